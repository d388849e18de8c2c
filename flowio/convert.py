"""FlowIO: a folder of class folders becomes sharded TFRecords, ``labels.txt`` and ``manifest.json``.

The article's FlowIO.py walked the class folders and wrote one TFRecord file in one process. This one
(docs/DESIGN.md §4):

1. scans ``DATA_DIR/<class>/...`` (sub-folders belong to their class, hidden entries are ignored);
2. checks every file by decoding it with Pillow in a pool of ``workers`` processes, which also build the
   framed ``tf.train.Example`` (``flowio.images``, ``flowio.records``: no TensorFlow import) and append it
   to a spool file of their own, telling the parent only where it lies: memory does not grow with the
   data set and the record bytes cross no pipe;
3. splits each class into train / validation with a fixed seed, assigns records to shards, and copies
   them from the spools into the shard files.

Output is deterministic (same bytes for any number of workers and any rerun). Everything is written to
``OUT/.flowio-tmp/`` and renamed into place; ``manifest.json`` is renamed last and is what marks the output
complete. ``OUT/.flowio-in-progress`` records which source and options a run is writing, so an interrupted
run's rerun may replace its leftovers while another source's output is refused. ``OUT/.flowio.lock`` is
held with ``fcntl.flock`` for the whole run, so a second run into the same folder is refused and a killed
run leaves no stale lock.
"""

import json
import multiprocessing
import os
import random
import re
import shutil
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from core.errors import UserError
from core.files import TEMPORARY, locked, remove, write_json, write_labels
from flowio.images import Skip, check
from flowio.records import example_bytes, frame

VERSION = "1"
SPLITS = ("train", "validation")
MANIFEST = "manifest.json"
LABELS = "labels.txt"
MARKER = ".flowio-in-progress"
LOCK = ".flowio.lock"
TMP = f"{TEMPORARY}flowio"  # the folder the files are written into, then published
SHARD_RE = re.compile(r"^(train|validation)-\d{5}-of-\d{5}\.tfrecord$")


def shard_name(split, index, count):
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


# --- 1. scan ------------------------------------------------------------------------------------------

def _hidden(name):
    return name.startswith(".")


def scan(data_dir):
    """Return ``(classes, files, ignored)``.

    ``classes`` are the sorted class-folder names; ``files`` the sorted ``(relative path, class id)`` of every
    non-hidden file inside them (at any depth); ``ignored`` the ``(relative path, reason)`` of files
    lying directly in ``data_dir``.
    """
    root = Path(data_dir)
    if not root.exists():
        raise UserError(f"{data_dir}: no such folder; give a folder that holds one sub-folder of images per class")
    if not root.is_dir():
        raise UserError(f"{data_dir}: is a file; give a folder that holds one sub-folder of images per class")
    entries = sorted(e for e in os.listdir(root) if not _hidden(e))
    classes = [e for e in entries if (root / e).is_dir()]
    ignored = [(e, "not inside a class folder") for e in entries if not (root / e).is_dir()]
    if not classes:
        raise UserError(f"{data_dir}: no class folders; put the images of each class in a sub-folder named after it")
    if len(classes) == 1:
        raise UserError(f"{data_dir}: only one class folder ({classes[0]!r}); a classifier needs at least two")
    files = []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
            for f in sorted(filenames):
                if not _hidden(f):
                    files.append((Path(dirpath, f).relative_to(root).as_posix(), label))
    files.sort()
    return classes, files, ignored


# --- 2. check and encode (runs in the worker processes) -----------------------------------------------

_spool = None  # this process's spool file: records are appended here, the parent only learns where


def _open_spool(tmp):
    global _spool
    # Unbuffered: a pool worker ends with os._exit, which would drop a buffer's last records.
    _spool = open(os.path.join(tmp, f"spool-{os.getpid()}"), "ab", buffering=0)


def _start_worker(tmp, parent, inherited_lock):
    """Pool initializer. A forked worker shares the parent's lock, and pool workers outlive a parent
    killed with SIGKILL (they wait on a queue nobody closes): without this, such orphans would run on
    and keep the output folder locked. So close the inherited lock and exit when the parent is gone."""
    if inherited_lock is not None:
        os.close(inherited_lock)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    _open_spool(tmp)


def _encode(task):
    """``(root, relative path, label, class name)`` -> ``("ok", spool, offset, length, format)`` or ``("skip", reason)``."""
    root, rel, label, text = task
    try:
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
        img = check(data)
    except OSError as err:
        return ("skip", f"cannot read: {err.strerror}")
    except Skip as err:
        return ("skip", str(err))
    record = frame(example_bytes({
        "image/encoded": img.encoded,
        "image/format": img.format,
        "image/class/label": label,
        "image/class/text": text,
        "image/height": img.height,
        "image/width": img.width,
        "image/channels": 3,
        "image/filename": rel,
    }))
    offset = _spool.tell()
    _spool.write(record)
    return ("ok", os.path.basename(_spool.name), offset, len(record), img.format if img.kept_original else "reencoded")


def _checked_records(tasks, tmp, workers, progress, lock_fd):
    """Yield ``_encode`` results in task order, using ``workers`` processes that spool into ``tmp``."""
    bar = tqdm(total=len(tasks), unit="img", desc="flowio: check", disable=None if progress else True, leave=False)
    with bar:
        if workers == 1:
            _open_spool(tmp)
            try:
                for task in tasks:
                    yield _encode(task)
                    bar.update()
            finally:
                _spool.close()
            return
        # fork starts workers at once; but a parent that already runs TensorFlow's threads (a test, a
        # notebook) must not be forked, so it spawns fresh interpreters instead.
        method = "spawn" if "tensorflow" in sys.modules else "fork"
        initargs = (str(tmp), os.getpid(), lock_fd if method == "fork" else None)
        # ProcessPoolExecutor, not Pool: if a decoder crashes a worker, Pool waits forever for the lost
        # task, while the executor raises BrokenProcessPool.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                 initializer=_start_worker, initargs=initargs) as pool:
            try:
                for result in pool.map(_encode, tasks, chunksize=8):
                    yield result
                    bar.update()
            except BrokenProcessPool:
                raise RuntimeError("a flowio worker process died while decoding (a crash inside an image"
                                   " decoder?); rerun with --workers 1 to see which file") from None


# --- 3. split and shard -------------------------------------------------------------------------------

def split_counts(n, val_fraction):
    """How many of a class's ``n`` images go to validation: round(n·F), at least 1 and leaving 1 for training."""
    if n < 2 or val_fraction <= 0:
        return 0
    return min(max(1, round(n * val_fraction)), n - 1)


def assign(records, num_classes, options):
    """``records``: ``(relative path, label, ...)`` sorted by path. Return ``{split: [records of each shard]}``."""
    rng = random.Random(options["seed"])
    splits = {s: [] for s in SPLITS}
    for label in range(num_classes):
        members = [r for r in records if r[1] == label]  # already sorted by path
        rng.shuffle(members)
        k = split_counts(len(members), options["val_fraction"])
        splits["validation"] += members[:k]
        splits["train"] += members[k:]
    shards = {}
    for split, members in splits.items():
        members.sort()
        rng.shuffle(members)  # classes mixed across and within shards
        n = min(options["shards"], len(members))
        shards[split] = [members[i * len(members) // n:(i + 1) * len(members) // n] for i in range(n)]
    return shards


# --- the output folder: lock, marker, conflicts ------------------------------------------------------

def _identity(data_dir, options):
    return {"source": str(Path(data_dir).resolve()), "options": options}


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _check_output(out, identity, overwrite):
    """Refuse an output folder that holds something other than this run's earlier output."""
    ours = [n for n in os.listdir(out) if n != LOCK and not n.startswith(TEMPORARY)]  # not our own leftovers
    if not ours or overwrite:
        return
    for name in (MARKER, MANIFEST):
        if name in ours:
            found = _read_json(out / name)
            found = found and {"source": found.get("source"), "options": found.get("options")}
            if found == identity:
                continue
            what = "an unfinished run" if name == MARKER else "the output"
            raise UserError(
                f"{out} holds {what} of another source or other options"
                f" ({found and found['source']}, {found and found['options']});"
                " pass --overwrite to replace it, or choose another --out")
    if MARKER not in ours and MANIFEST not in ours:
        raise UserError(f"{out} is not empty and holds no flowio output; choose an empty or new --out"
                        " (or pass --overwrite to write beside what is there)")


# --- the whole run ------------------------------------------------------------------------------------

def convert(data_dir, out_dir, val_fraction=0.2, shards=4, seed=0, workers=1, overwrite=False, progress=True):
    """Convert ``data_dir`` into ``out_dir``; return the manifest (a dict)."""
    if not 0 <= val_fraction < 1:
        raise UserError(f"--val-fraction {val_fraction}: must be at least 0 and below 1")
    if shards < 1:
        raise UserError(f"--shards {shards}: must be at least 1")
    if workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")
    options = {"val_fraction": val_fraction, "shards": shards, "seed": seed}
    classes, files, ignored = scan(data_dir)
    root, out = Path(data_dir).resolve(), Path(out_dir).resolve()
    if out == root or root in out.parents:
        raise UserError(f"--out {out_dir}: is inside the data folder {data_dir}; choose a folder outside it")
    identity = _identity(data_dir, options)

    created = not out.exists()
    if not created and not out.is_dir():
        raise UserError(f"--out {out_dir}: is a file; choose a folder")
    if not created:
        _check_output(out, identity, overwrite)  # before the lock file is made: a refusal writes nothing
    out.mkdir(parents=True, exist_ok=True)
    busy = f"{out}: another flowio run is writing there; wait for it or choose another --out"
    with locked(out / LOCK, busy) as lock_fd:  # released by the kernel if this process dies
        had_marker = publishing = done = False
        try:
            _check_output(out, identity, overwrite)  # again, now that no other run can change it
            for leftover in [n for n in os.listdir(out) if n.startswith(TEMPORARY)]:  # of a killed run
                remove(out / leftover)
            had_marker = (out / MARKER).exists()
            write_json(out / MARKER, identity)
            (out / TMP).mkdir()
            manifest, names = _prepare(root, out / TMP, classes, files, ignored, options, identity, workers,
                                       progress, lock_fd)
            publishing = True
            _publish(out, names)
            done = True
            return manifest
        finally:
            shutil.rmtree(out / TMP, ignore_errors=True)
            # The marker stays only when this run may have left a half-replaced output (or found one): the
            # rerun then knows the leftovers are its own. A run that stopped before touching them takes it away.
            if done or not (publishing or had_marker):
                (out / MARKER).unlink(missing_ok=True)
            if created and not [n for n in os.listdir(out) if n != LOCK]:
                shutil.rmtree(out, ignore_errors=True)


def _prepare(root, tmp, classes, files, ignored, options, identity, workers, progress, lock_fd):
    """Check, encode, split and write every output file into ``tmp``; return ``(manifest, shard names)``."""
    tasks = [(str(root), rel, label, classes[label]) for rel, label in files]
    skipped = [{"file": rel, "reason": reason} for rel, reason in ignored]
    records, formats = [], {}
    for (rel, label), result in zip(files, _checked_records(tasks, tmp, workers, progress, lock_fd)):
        if result[0] == "skip":
            skipped.append({"file": rel, "reason": result[1]})
            continue
        _, spool, offset, length, stored = result
        records.append((rel, label, spool, offset, length))
        formats[stored] = formats.get(stored, 0) + 1

    per_class = [sum(1 for r in records if r[1] == label) for label in range(len(classes))]
    empty = [name for name, n in zip(classes, per_class) if n == 0]
    if empty:
        first = next((s for s in skipped if s["file"].split("/", 1)[0] == empty[0]), None)
        why = f" (e.g. {first['file']}: {first['reason']})" if first else " (it is empty)"
        raise UserError(f"class folder {empty[0]!r} holds no valid image{why}; add images to it or remove it")

    shards = assign(records, len(classes), options)
    names = {}
    spools = {}
    bar = tqdm(total=len(records), unit="img", desc="flowio: write", disable=None if progress else True, leave=False)
    try:
        with bar:
            for split, lists in shards.items():
                names[split] = [shard_name(split, i, len(lists)) for i in range(len(lists))]
                for name, members in zip(names[split], lists):
                    with open(tmp / name, "wb") as f:
                        for _, _, spool, offset, length in members:
                            if spool not in spools:
                                spools[spool] = open(tmp / spool, "rb")
                            spools[spool].seek(offset)
                            f.write(spools[spool].read(length))
                            bar.update()
    finally:
        for f in spools.values():
            f.close()

    counts = {split: {c: 0 for c in classes} for split in SPLITS}
    for split, lists in shards.items():
        for members in lists:
            for _, label, *_ in members:
                counts[split][classes[label]] += 1
    manifest = {
        **identity,
        "flowio_version": VERSION,
        "classes": classes,
        "counts": counts,
        "num_examples": {split: sum(counts[split].values()) for split in SPLITS},
        "shards": names,
        # what the reader checks before it reads a shard: TensorFlow takes a file cut short between two records
        # as a shorter file
        "shard_bytes": {name: os.path.getsize(tmp / name) for ns in names.values() for name in ns},
        "stored": formats,
        "skipped": sorted(skipped, key=lambda s: s["file"]),
    }
    write_labels(tmp / LABELS, classes)
    write_json(tmp / MANIFEST, manifest)
    return manifest, names


def _publish(out, names):
    """Move the finished files from ``OUT/.flowio-tmp`` into ``OUT``."""
    tmp = out / TMP
    # The old manifest goes first and the new one comes last, so at no moment does a manifest
    # describe shards that are not all in place.
    if (out / MANIFEST).exists():
        os.unlink(out / MANIFEST)
    keep = {n for ns in names.values() for n in ns}
    for stale in os.listdir(out):
        if SHARD_RE.match(stale) and stale not in keep:
            os.unlink(out / stale)
    for name in sorted(keep) + [LABELS, MANIFEST]:
        os.replace(tmp / name, out / name)
