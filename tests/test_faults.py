"""Faults across the whole pipeline, with real processes and real files: nothing is lost, nothing half-written
is taken as complete, and every fault a user can meet ends in one line and exit status 2.

* SIGKILL at seeded moments of flowio, legacy training and modern training, then the same command again;
* two runs into the same output at once;
* a full disk (a small tmpfs the test mounts; root only) during flowio and during a checkpoint save;
* damaged records (a truncated shard, flipped bytes) and a checkpoint with a missing file;
* a seeded fuzz pass over the decode path (mutated JPEG / PNG / GIF files).
"""

import io
import json
import os
import random
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from helpers import (BATCH, IMPLS, KERAS3_BACKENDS, QUIET_TF, assert_user_error, best_cross_entropy, best_values,
                     kill_when, pattern, processes_naming, read_run, run_script, save, script, train_args, train_run,
                     tree_bytes)

SEED = 20261123
KILLS = 5
TRAINING_KILLS = 3  # each a training process of 20-40 s on 2 cores: five took 3.6 minutes of the suite in legacy
STEPS_PER_EPOCH = 36 // BATCH  # the tiny records: 48 images, a quarter held out


# --- SIGKILL, and a second run at once: flowio ---------------------------------------------------------

@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """1,600 JPEGs in 4 classes and their conversion by an uninterrupted run: ``(data, tree bytes, seconds)``."""
    base = tmp_path_factory.mktemp("jpegs")
    for c in range(4):
        for i in range(400):
            save(base / "data" / f"c{c}" / f"{i:03d}.jpg", Image.fromarray(pattern(48, 48, 1000 * c + i)), "JPEG")
    seconds = []
    for out in ("reference", "again"):  # the quicker of two: a kill must not come after a run that went faster
        start = time.perf_counter()
        assert run_script("flowio.py", base / "data", "--out", base / out, "--workers", 2, "--quiet").returncode == 0
        seconds.append(time.perf_counter() - start)
    return base / "data", tree_bytes(base / "reference"), min(seconds)


@pytest.mark.slow
def test_flowio_killed_at_seeded_moments_then_rerun_gives_exactly_the_bytes_of_an_uninterrupted_run(jpegs, tmp_path):
    """Five kills at seeded moments spread over the run (process start to the last rename), three into a fresh or
    half-written folder and two over a complete output; each rerun starts from what the last one left."""
    data, expected, seconds = jpegs
    out = tmp_path / "out"
    rng = random.Random(SEED)
    moments = [rng.uniform(0.05, 0.6) * seconds for _ in range(KILLS)]  # one run ended at 0.72 of the reference
    for i, delay in enumerate(moments):
        if i == 3:  # from here on, kills hit runs that replace a complete output
            assert run_script("flowio.py", data, "--out", out, "--quiet").returncode == 0
            assert tree_bytes(out) == expected
        proc = subprocess.Popen(script("flowio.py", data, "--out", out, "--workers", 2, "--quiet"))
        kill_when(proc, lambda: True, delay, f"flowio at {delay:.2f} s of {seconds:.2f} s")
        # its worker processes notice their parent died, exit, and release the lock they share
        deadline = time.time() + 10
        while time.time() < deadline and processes_naming(out):
            time.sleep(0.05)
        assert not processes_naming(out)
        if (out / "manifest.json").exists():  # whatever looks complete is complete
            assert tree_bytes(out) == expected, f"kill {i} at {delay:.2f} s"
        else:
            assert i < 3 and not list(out.glob("*.tfrecord")), f"kill {i} at {delay:.2f} s"
    assert run_script("flowio.py", data, "--out", out, "--quiet").returncode == 0
    assert tree_bytes(out) == expected


@pytest.mark.slow
def test_a_second_flowio_run_into_the_same_output_is_refused_while_the_first_goes_on(jpegs, tmp_path):
    data, expected, _ = jpegs
    out = tmp_path / "out"
    first = subprocess.Popen(script("flowio.py", data, "--out", out, "--workers", 1, "--quiet"))  # the slower
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out / ".flowio-in-progress").exists():
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # holding its lock while the second starts, however loaded the machine
        second = subprocess.run(script("flowio.py", data, "--out", out, "--quiet"), capture_output=True, text=True,
                                timeout=60)
        assert first.poll() is None, "the first run ended before the second started: nothing was tested"
        assert_user_error(second, "another flowio run")
    finally:
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=120) == 0
    assert tree_bytes(out) == expected  # nothing of the second run is in it


# --- SIGKILL, and a second run at once: training --------------------------------------------------------

def saved_step(impl, run_dir):
    """The step the run's last checkpoint holds, read from the files alone (-1 before run.json exists)."""
    if not (run_dir / "run.json").exists():
        return -1
    if impl == "legacy":
        state = run_dir / "ckpt" / "last" / "checkpoint"
        if not state.exists():
            return 0
        return int(state.read_text().split('"')[1].rsplit("-", 1)[1])
    step = backup_step(impl, run_dir, STEPS_PER_EPOCH)
    if impl == "keras3":  # no backup (yet, or any more: the run ended), or one being renamed in right now
        return step if step > 0 else len(read_run(run_dir)["epochs"]) * STEPS_PER_EPOCH
    if step < 0:  # modern: being written right now: try again
        return 0
    return step or (len(read_run(run_dir)["epochs"]) * STEPS_PER_EPOCH if (run_dir / "last.keras").exists() else 0)


def backup_step(impl, run_dir, steps_per_epoch):
    """The step a modern or keras3 run's backup alone holds (0 when there is none, -1 while it is being written):
    keras3's weights file, whose optimizer/vars/0 is iterations; modern's BackupAndRestore checkpoint, read as
    train.py reads it."""
    if impl == "keras3":
        import h5py
        if not (run_dir / "backup.weights.h5").exists():
            return 0
        try:
            with h5py.File(run_dir / "backup.weights.h5", "r") as f:
                return int(f["optimizer/vars/0"][()])
        except (OSError, KeyError):  # gone or being renamed in between
            return -1
    try:
        from modern.train import backed_up_step
        return backed_up_step(run_dir / "backup", steps_per_epoch)
    except Exception:  # noqa: BLE001 -- being written right now: try again
        return -1


def test_a_legacy_checkpoint_the_state_does_not_list_is_removed_when_the_folder_is_reopened(tmp_path):
    """A Saver killed between its files and its ``checkpoint`` state (or between the state and retiring the
    previous checkpoint, max_to_keep=1) leaves files no later save deletes: reopening the folder removes them (the
    kill test above met the second once, a model.ckpt-9.data file beside the run's last checkpoint)."""
    from legacy.slim_compat import tf
    from legacy.train import remove_orphans
    for step in (4, 9, 12):
        for suffix in ("index", "data-00000-of-00001"):
            (tmp_path / f"model.ckpt-{step}.{suffix}").write_bytes(b"x")
    tf.train.update_checkpoint_state(str(tmp_path), "model.ckpt-9", ["model.ckpt-9"])
    (tmp_path / "model.ckpt-4.index").unlink()  # retired halfway
    remove_orphans(str(tmp_path), tf.train.get_checkpoint_state(str(tmp_path)))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt-9.data-00000-of-00001", "model.ckpt-9.index"]
    remove_orphans(str(tmp_path), None)  # no state at all: a first save killed before it
    assert os.listdir(tmp_path) == ["checkpoint"]


# the kill test's runs: each half, keras3 on each Keras backend: (train.py's arguments besides train_args', the
# saved steps to kill after, how many of them). Of 18 steps, saved every 4 and at the epoch end (9): the last kill
# lands before the end. keras3 saves every 3 steps, which divides the epoch's 9, and is killed after each saved
# step up to 12, at the epoch end the moment its backup is there (keras3/train.py StepBackup: taken before the
# epoch's metrics were in run.json, it would resume past an epoch never recorded)
KILLED = {**{impl: ((), (0, 2, 4, 6, 8, 9, 11, 12), TRAINING_KILLS) for impl in IMPLS},
          **{f"keras3-{b}": (("--keras-backend", b, "--save-every", 3), (0, 3, 6, 9, 12), 5) for b in KERAS3_BACKENDS}}


@pytest.mark.slow
@pytest.mark.parametrize("variant", KILLED)
def test_training_killed_at_seeded_moments_resumes_each_time_and_ends_as_an_uninterrupted_run(runs, tiny, tmp_path,
                                                                                            variant, request):
    """Three SIGKILLs (keras3: five), each at a seeded moment: once the run has saved step >= N (N = 0: once it
    has written run.json, i.e. after TensorFlow's import; a rerun that starts past N: counted from its start), plus
    a seeded delay. Each rerun of the same command resumes at the
    step saved last (never earlier than the previous resume), and the last one ends with the epochs, steps,
    validation figures, weights and files of an uninterrupted run (deterministic ops make them comparable), so no
    step was repeated or skipped. A second training into the same folder meanwhile is refused. Evaluate works on
    it. keras3's rerun resumes at the step where Keras 3's own BackupAndRestore would restart the epoch."""
    impl, _, backend = variant.partition("-")
    # the shared run: the same command, uninterrupted
    records, reference = tiny[1], request.getfixturevalue("keras3_runs")[backend] if backend else runs[impl]
    env = {**os.environ, **QUIET_TF, "TF_DETERMINISTIC_OPS": "1"}
    run_dir = tmp_path / "killed"
    extra, steps, kills = KILLED[variant]
    command = script("train.py", *train_args(impl, records, run_dir, *extra))
    rng = random.Random(SEED + list(KILLED).index(variant))
    thresholds = sorted(rng.sample(steps, kills))
    delays = [0.0 if backend and t == STEPS_PER_EPOCH else rng.uniform(0.0, 0.8) for t in thresholds]
    saved_before = []
    for i, (threshold, delay) in enumerate(zip(thresholds, delays)):
        saved_before.append(max(saved_step(impl, run_dir), 0))
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i == 0:  # a second training into the same folder while this one runs
            deadline = time.time() + 120
            while time.time() < deadline and saved_step(impl, run_dir) < 0:
                time.sleep(0.05)
            proc.send_signal(signal.SIGSTOP)  # it keeps its lock, and its steps, until the second has asked
            second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
            proc.send_signal(signal.SIGCONT)
            assert proc.poll() is None, "the first run ended before the second one asked: nothing was tested"
            assert_user_error(second, "another training is running")
        kill_when(proc, lambda: saved_step(impl, run_dir) >= threshold, delay,
                  f"kill {i}: saved step >= {threshold} + {delay:.2f} s")
        assert read_run(run_dir)["state"] == "running"
        if backend and threshold == STEPS_PER_EPOCH == saved_step(impl, run_dir):  # killed at the epoch-end backup
            assert len(read_run(run_dir)["epochs"]) == 1, "the backup of the epoch's end came before its record"
    saved_before.append(saved_step(impl, run_dir))
    resumed = train_run(impl, records, run_dir, *extra, env={"TF_DETERMINISTIC_OPS": "1"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    run, ref = read_run(run_dir), read_run(reference)
    # each rerun that got past TensorFlow's import resumed at the step saved last, the step counter never went
    # back, the last rerun resumed at the last saved step, and the kills reached late into the run
    resumed_at = run["resumed_from_steps"]
    assert resumed_at == sorted(resumed_at) and set(resumed_at) <= set(saved_before), (resumed_at, saved_before)
    assert resumed_at[-1] == saved_before[-1] >= thresholds[-1] and len(resumed_at) >= 2, (resumed_at, saved_before)
    assert run["state"] == "complete" and [e["step"] for e in run["epochs"]] == [e["step"] for e in ref["epochs"]]
    # bit-equal: the same program on the same CPU with deterministic ops, resumed from exact checkpoints at the
    # exact batch (measured: every epoch's val_loss equal in both halves); a step repeated or skipped moves it
    for got, want in zip(run["epochs"], ref["epochs"]):
        assert got["val_loss"] == want["val_loss"] and got["val_accuracy"] == want["val_accuracy"], (got, want)
    got, want = best_values(run_dir), best_values(reference)
    assert sorted(got) == sorted(want) and len(want) > 100
    assert all(np.array_equal(got[name], value) for name, value in want.items())
    def listing(folder):  # what training wrote (the shared run was also exported, and maybe evaluated)
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                      if "events.out" not in p.name and not p.name.startswith(".")
                      and p.relative_to(folder).parts[0] not in ("model.tflite", "saved_model", "confusion.png"))
    assert listing(run_dir) == listing(reference)
    evaluated = run_script("evaluate.py", run_dir, "--json", env={**os.environ, **QUIET_TF})
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout)["examples"] == 12
    shutil.rmtree(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["modern", "keras3"])
def test_the_best_epoch_run_again_and_worse_is_the_best_h5_that_run_json_names(tiny, tmp_path, impl):
    """Killed after run.json recorded an epoch and before the backup of its end (the order that keeps every
    epoch's metrics), a run runs the epoch again, and run.json takes the rerun as the best whatever its accuracy:
    best.h5 must then hold the rerun's weights (``Run.best_to_beat``). Deterministic steps give a rerun its first
    run's accuracy, so the first epoch 2 is written into run.json as one no rerun beats (val_accuracy 1.0), as
    ParameterServerStrategy's asynchronous steps can give; before the fix best.h5 kept epoch 1's weights."""
    records, run_dir, steps = tiny[1], tmp_path / "run", 36  # batches of one: the kill has an epoch of 36 steps
    # no label smoothing or weight decay: the recorded val_loss is the cross-entropy alone, computed again below
    args = ["--model", "lenet5", "--batch-size", 1, "--save-every", steps, "--label-smoothing", 0, "--weight-decay", 0]
    proc = subprocess.Popen(script("train.py", *train_args(impl, records, run_dir, *args, epochs=3)),
                            env={**os.environ, **QUIET_TF}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: backup_step(impl, run_dir, steps) >= steps, 0.0, "the backup of epoch 1's end")
    record = read_run(run_dir)
    # in epoch 2: a first epoch 2 recorded already would be in best.h5, which its deterministic rerun equals
    assert backup_step(impl, run_dir, steps) == steps and len(record["epochs"]) == 1, "killed too late"
    first = record["epochs"][0]
    record["epochs"] = [first, {**first, "epoch": 2, "step": 2 * steps, "val_accuracy": 1.0}]
    record["best"] = {"epoch": 2, "val_accuracy": 1.0}
    (run_dir / "run.json").write_text(json.dumps(record))

    resumed = train_run(impl, records, run_dir, *args, epochs=3)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = read_run(run_dir)
    assert run["resumed_from_steps"] == [steps] and run["epochs"][1]["val_accuracy"] < 1.0, run
    assert run["best"]["epoch"] >= 2, run["best"]
    # best.h5's cross-entropy on the validation split, computed here, is the val_loss recorded for the best epoch
    cross_entropy, examples = best_cross_entropy(run_dir, records)
    best = run["epochs"][run["best"]["epoch"] - 1]
    assert examples == 12 and abs(cross_entropy - best["val_loss"]) < 1e-4, (cross_entropy, best)


# --- a full disk ----------------------------------------------------------------------------------------

@contextmanager
def small_disk(path, size):
    """A tmpfs of ``size`` mounted at ``path`` for the block (root only: the test skips otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs to fill needs root and mount(8)")
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(disk, leave):
    """Fill ``disk`` up to ``leave`` free bytes with one file; return it."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


def noise_pngs(folder, classes, count, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(classes):
        for i in range(count):
            save(folder / f"c{c}" / f"{i:03d}.png", Image.fromarray(rng.integers(0, 256, (48, 48, 3), np.uint8)),
                 "PNG")


@pytest.mark.slow
def test_a_full_disk_during_flowio_is_one_line_and_leaves_the_last_complete_output(tmp_path):
    data = tmp_path / "data"
    noise_pngs(data, 2, 10)  # ~140 KB of records
    with small_disk(tmp_path / "disk", "1m") as disk:
        out = disk / "records"
        assert run_script("flowio.py", data, "--out", out, "--quiet").returncode == 0
        complete = tree_bytes(out)
        noise_pngs(data, 2, 100, seed=1)  # the same source grown to ~1.4 MB: its rerun cannot fit
        proc = run_script("flowio.py", data, "--out", out, "--quiet")
        assert_user_error(proc, "no space left", "run the same command again")
        assert tree_bytes(out) == complete  # the old output, whole; no new shard, no temporary folder
        assert sorted(os.listdir(out)) == sorted([*complete, ".flowio.lock"])
        shutil.rmtree(out)
        assert_user_error(run_script("flowio.py", data, "--out", out, "--quiet"), "no space left")
        assert not out.exists()  # the folder it made is gone again: nothing a later run or the reader could take


def complete_checkpoints(impl, run_dir):
    """Every checkpoint the run's files point at, with all its files (what the next run or prediction reads)."""
    from core.checkpoints import check_complete
    if impl == "legacy":
        import tensorflow as tf
        for folder in ("last", "best"):
            state = tf.train.get_checkpoint_state(str(run_dir / "ckpt" / folder))
            for prefix in state.all_model_checkpoint_paths:
                check_complete(str(run_dir / "ckpt" / folder / prefix) if not os.path.isabs(prefix) else prefix, "")
        return
    import h5py
    with h5py.File(run_dir / "best.h5", "r") as f:
        assert f.attrs["layer_names"].size
    import zipfile
    assert zipfile.ZipFile(run_dir / "last.keras").testzip() is None


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_the_previous_checkpoint_still_works(tiny, tmp_path,
                                                                                                 impl):
    """lenet5 (a 0.5 MB checkpoint) trains one epoch on a 16 MB tmpfs; with the disk filled, continuing to a second
    epoch fails at its first save; the first epoch's checkpoints are whole, evaluate reads them, and once there
    is room the same command resumes from them."""
    records = tiny[1]
    env = {"TF_DETERMINISTIC_OPS": "1"}
    with small_disk(tmp_path / "disk", "16m") as disk:
        run_dir = disk / "run"
        first = train_run(impl, records, run_dir, "--model", "lenet5", epochs=1, env=env)
        assert first.returncode == 0, first.stderr[-2000:]
        filler = fill(disk, 64 * 1024)
        full = train_run(impl, records, run_dir, "--model", "lenet5", epochs=2, env=env)
        assert_user_error(full, "no space left", "run the same command again")
        assert not [p for p in run_dir.rglob("*") if "tmp" in p.name or "tempstate" in p.name]
        complete_checkpoints(impl, run_dir)
        filler.unlink()
        evaluated = run_script("evaluate.py", run_dir, "--json", env={**os.environ, **QUIET_TF})
        assert evaluated.returncode == 0, evaluated.stderr[-2000:]
        resumed = train_run(impl, records, run_dir, "--model", "lenet5", epochs=2, env=env)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        run = read_run(run_dir)
        assert run["state"] == "complete" and [e["step"] for e in run["epochs"]] == [9, 18]
        assert run["resumed_from_steps"][-1] == STEPS_PER_EPOCH
        if impl == "legacy":  # and scripts/export.py exports it (through the modern model), current
            exported = run_script("export.py", run_dir, env={**os.environ, **QUIET_TF})
            assert exported.returncode == 0, exported.stderr[-2000:]
            run = read_run(run_dir)
            assert run["export"]["best_epoch"] == run["best"]["epoch"] and (run_dir / "model.tflite").exists()
            assert not [p.name for p in run_dir.iterdir() if p.name.startswith((".tmp-", ".old-"))]


# --- damaged records and checkpoints -----------------------------------------------------------------------

@pytest.fixture
def records_copy(tiny, tmp_path):
    copy = tmp_path / "records"
    shutil.copytree(tiny[1], copy)
    return copy


def shard(records, split, index=0):
    return records / json.loads((records / "manifest.json").read_text())["shards"][split][index]


def read_everything(records, impl):
    """Read both splits through the reader as the half ``impl`` does, inside ``records_errors``."""
    import flowio
    from flowio.reader import records_errors
    with records_errors(str(records)):
        if impl == "modern":
            for split in ("train", "validation"):
                for _ in flowio.dataset(str(records), split, 32, 4, training=split == "train"):
                    pass
            return
        from legacy.slim_compat import tf
        graph = tf.Graph()
        images, _ = flowio.graph_input(graph, str(records), "train", 32, 4, training=True)
        with tf.Session(graph=graph) as sess:
            for _ in range(2 * STEPS_PER_EPOCH):
                sess.run(images)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("damage", ["truncated between records", "truncated inside a record", "flipped bytes"])
def test_damaged_records_fail_naming_the_shard_not_hanging_or_skipping(records_copy, impl, damage):
    from core.errors import UserError
    from flowio.records import first_problem
    target = shard(records_copy, "train", 1)
    data = bytearray(target.read_bytes())
    first_length = int.from_bytes(data[:8], "little")
    if damage == "truncated between records":
        del data[16 + first_length:]  # TensorFlow alone would read one record and call it the whole shard
    elif damage == "truncated inside a record":
        del data[len(data) // 2:]
    else:
        data[16 + first_length + 12 + 100] ^= 0x5A  # inside the second record's image bytes
    target.write_bytes(bytes(data))
    assert first_problem(shard(records_copy, "train", 0)) is None
    with pytest.raises(UserError, match=target.name):
        read_everything(records_copy, impl)


@pytest.mark.slow
def test_damaged_records_end_train_and_evaluate_with_one_line_naming_the_shard(runs, records_copy, tmp_path):
    def flip(target):
        good = target.read_bytes()
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        return good

    train_shard, val_shard = shard(records_copy, "train", 2), shard(records_copy, "validation", 0)
    good = flip(train_shard)
    proc = train_run("modern", records_copy, tmp_path / "run", timeout=300)
    assert_user_error(proc, train_shard.name, "damaged record", "rerun scripts/flowio.py")
    train_shard.write_bytes(good)
    flip(val_shard)
    proc = run_script("evaluate.py", runs["legacy"], "--data", records_copy, timeout=300,
                      env={**os.environ, **QUIET_TF})
    assert_user_error(proc, val_shard.name, "damaged record")


@pytest.mark.slow
def test_a_checkpoint_with_a_missing_file_is_a_clear_error(runs, tiny, tmp_path):
    legacy_run = tmp_path / "legacy-run"
    shutil.copytree(runs["legacy"], legacy_run)
    for folder in ("best", "last"):
        for data in (legacy_run / "ckpt" / folder).glob("*.data-*"):
            data.unlink()
    proc = run_script("evaluate.py", legacy_run, env={**os.environ, **QUIET_TF})
    assert_user_error(proc, "checkpoint is incomplete", ".data-00000-of-00001")
    # resuming it (a third epoch) meets the same, and says how to start over
    proc = train_run("legacy", tiny[1], legacy_run, epochs=3)
    assert_user_error(proc, "checkpoint is incomplete", "--fresh")


def test_a_modern_backup_with_a_missing_file_is_a_clear_error(tmp_path):
    import tensorflow as tf
    from core.errors import UserError
    from modern.train import backed_up_step
    backup = tmp_path / "backup" / "chief"
    checkpoint = tf.train.Checkpoint(ckpt_saved_epoch=tf.Variable(1, dtype=tf.int64),
                                     ckpt_saved_batch=tf.Variable(3, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(backup), max_to_keep=1).save()
    assert backed_up_step(tmp_path / "backup", 9) == 13
    for data in backup.glob("*.data-*"):
        data.unlink()
    with pytest.raises(UserError, match="checkpoint is incomplete"):
        backed_up_step(tmp_path / "backup", 9)


# --- fuzzing the decode path ------------------------------------------------------------------------------

def seed_files():
    """One small file of each kind the decode path meets: ``{name: bytes}``."""
    out = {}
    for name, fmt, params, convert in [
        ("baseline.jpg", "JPEG", {"quality": 90}, None),
        ("progressive.jpg", "JPEG", {"quality": 80, "progressive": True}, None),
        ("gray.jpg", "JPEG", {"quality": 85}, "L"),
        ("rgb.png", "PNG", {}, None),
        ("palette.png", "PNG", {}, "P"),
        ("rgba.png", "PNG", {}, "RGBA"),
        ("still.gif", "GIF", {}, "P"),
    ]:
        img = Image.fromarray(pattern(24, 32, len(out)))
        buf = io.BytesIO()
        (img.convert(convert) if convert else img).save(buf, fmt, **params)
        out[name] = buf.getvalue()
    frames = [Image.fromarray(pattern(16, 16, s)).convert("P") for s in (1, 2)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    out["anim.gif"] = buf.getvalue()
    return out


def mutate(data, rng):
    """One seeded mutation: flipped bytes, a cut, an inserted, repeated or zeroed run of bytes, or a splice."""
    data = bytearray(data)
    kind = rng.randrange(6)
    at = rng.randrange(len(data))
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del data[at:]
    elif kind == 2:
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == 3:
        data[at:at] = data[at:at + rng.randint(1, 200)]
    elif kind == 4:
        data[at:at + rng.randint(1, 64)] = bytes(min(64, len(data) - at))
    else:
        data[at:at + 4] = rng.choice([b"\xff\xd8\xff\xc0", b"\xff\xd9", b"IEND", b"\x00\x00\xff\xff", b"\xff\xff\xff\xff"])
    return bytes(data)


@pytest.mark.slow
def test_fuzzed_images_are_converted_or_skipped_with_a_reason_and_every_record_decodes_in_tensorflow(tmp_path):
    import flowio
    from flowio.images import decode_rgb
    rng = random.Random(SEED)
    data = tmp_path / "data"
    seeds = seed_files()
    names = []
    for i in range(320):
        name, original = rng.choice(sorted(seeds.items()))
        rel = f"class{i % 2}/{i:03d}-{name}"
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(mutate(original, rng))
        names.append(rel)
    for c in range(2):  # a clean image per class, so both classes survive whatever the mutations did
        (data / f"class{c}" / "clean.png").write_bytes(seeds["rgb.png"])
        names.append(f"class{c}/clean.png")
    out = tmp_path / "records"
    proc = run_script("flowio.py", data, "--out", out, "--workers", 2, "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = {s["file"]: s["reason"] for s in manifest["skipped"]}
    assert all(reason for reason in skipped.values())
    converted = sum(manifest["num_examples"].values())
    assert converted + len(skipped) == len(names)
    assert 20 < len(skipped) < len(names) - 20, len(skipped)  # the mutations hit both ways
    seen = []
    for split in ("train", "validation"):
        for record in flowio.raw_dataset(str(out), split).as_numpy_iterator():
            name = record["filename"].decode()
            # and to the pixels Pillow gave (what use_model sees), kept bytes and re-encoded ones alike
            np.testing.assert_array_equal(record["image"], decode_rgb(data / name), err_msg=name)
            seen.append(name)
    assert sorted(seen) == sorted(set(names) - set(skipped))
