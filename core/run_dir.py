"""The run directory both halves write and evaluate / use_model / export read (docs/DESIGN.md, "The run directory").

``runs/<impl>-<model>/`` by default, and ``runs/latest``, a symlink to the run written last. Its files are
named here and nowhere else (the constants below); ``Run`` is the typed record ``run.json`` holds. This module
owns what does not depend on the half that trains: creating and converting a record, recording an epoch,
saving; opening a folder for training (the lock, the leftovers of a killed save, ``--fresh``, the identity
check, resuming or continuing); the ``latest`` link; ``labels.txt``; ``curves.png``.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core import files, recipe
from core.errors import UserError
from core.files import TEMPORARY, atomic, write_json, write_labels  # noqa: F401 -- core.files owns them
from core.halves import HALVES as IMPLS  # noqa: F401 -- the packages of the halves (core.halves owns them)

# --- the layout -------------------------------------------------------------------------------------------
RUN_JSON = "run.json"
LABELS = "labels.txt"
CURVES = "curves.png"
CONFUSION = "confusion.png"  # evaluate.py
LOGS = "logs"  # TensorBoard: logs/train, logs/validation
LOCK = ".lock"
LATEST = "latest"  # beside the run folders: the one written last
LEGACY_LAST = os.path.join("ckpt", "last")  # Saver files: every --save-every steps and at each epoch end
LEGACY_BEST = os.path.join("ckpt", "best")  # Saver files: the best epoch by validation accuracy
MODERN_LAST = "last.keras"  # the whole model with its optimizer, at each epoch end
MODERN_BEST = "best.h5"  # the best epoch's weights, keyed by layer name (Keras's HDF5 format)
MODERN_BACKUP = "backup"  # BackupAndRestore's state while a run is unfinished
MODERN_FINAL = "final.h5"  # multi-worker: the weights each worker ended with
KERAS3_LAST = "last.keras"  # keras3: Keras 3's whole model with its optimizer, at each epoch end
KERAS3_BEST = "best.h5"  # keras3: the best epoch's weights keyed by layer name (core.checkpoints.write_h5)
KERAS3_BACKUP = "backup.weights.h5"  # keras3: the weights and optimizer every --save-every steps (resuming)
TFLITE = "model.tflite"  # export: LiteRT
SAVED_MODEL = "saved_model"  # export: TF Serving
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")  # train.py --precision: Keras's policy names
IDENTITY = ("impl", "model", "image_size", "labels")  # what must match for a run folder to be resumed


def default_run_dir(impl, model, root="runs"):
    return os.path.join(root, f"{impl}-{model}")


# --- the record -------------------------------------------------------------------------------------------

# How a run trains (``run.json``'s ``hyper``); the defaults are train.py's. The recipe's fields come from
# core.recipe's table (research/slim's flags, slim's names); the others are the run's own.
Hyper = dataclasses.make_dataclass("Hyper", [
    ("batch_size", int, 32),
    ("epochs", int, 10),
    *recipe.record_fields(),  # lr, optimizer, ..., moving_average_decay (None: none), trainable_scopes (None: all)
    ("weight_decay", float | None, None),  # None: the model's own (core.models' table)
    ("batch_norm_decay", float | None, None),  # None: the model's own
    # "precise": re-estimated with the current weights over precise_bn_batches training batches before each
    # validation (where the model's BN decay can be set); "moving": the moving averages, as slim
    ("batch_norm_statistics", str, "precise"),
    ("precise_bn_batches", int, recipe.PRECISE_BN_BATCHES),
    ("seed", int, 0),
    ("flip", bool, True),
    ("precision", str, "float32"),
    ("save_every", int, 200),
])
Hyper.__module__, Hyper.__doc__ = __name__, "How a run trains (``run.json``'s ``hyper``); the defaults are train.py's."


@dataclass
class Run:
    """``run.json``: what was trained, on what, how, and how far; ``folder`` is where it lives (not saved)."""
    folder: str = field(compare=False)
    impl: str
    model: str
    num_classes: int
    labels: list
    image_size: int
    preprocessing: dict | None = None  # flowio.preprocessing_spec: what use_model must do to an image
    data: str | None = None  # the records it trained on (None: converted)
    hyper: Hyper | None = None  # None: converted
    init_from: dict | None = None
    epochs: list = field(default_factory=list)  # one dict of metrics per epoch, "epoch" counting from 1
    best: dict | None = None  # {"epoch", "val_accuracy"}
    resumed_from_steps: list = field(default_factory=list)
    state: str = "running"  # running, complete or converted
    # written only once set
    converted_from: dict | None = None
    distribute: dict | None = None
    export: dict | None = None
    evaluation: dict | None = None
    keras_backend: str | None = None  # keras3: the backend it trained on (any backend predicts from it)
    kernels: dict | None = None  # the CPU kernels the last attempt trained on (core.kernels.record)
    # not saved: on a cluster's other workers, the chief's folder (their own is a scratch copy), where the
    # checkpoints every worker resumes from are
    chief_folder: str | None = field(default=None, compare=False)

    _OPTIONAL = ("converted_from", "distribute", "export", "evaluation", "keras_backend", "kernels")

    @classmethod
    def read(cls, folder):
        """The record in ``folder``, or None when it has no ``run.json``."""
        path = os.path.join(folder, RUN_JSON)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        try:
            hyper = entries.pop("hyper", None)
            run = cls(folder=str(folder), hyper=None if hyper is None else Hyper(**recipe.upgraded(hyper)),
                      **entries)
        except TypeError as err:  # a key missing or unknown
            raise UserError(f"{path}: not a run record of this program ({err}); train the run again") from None
        run.before_recipe = hyper is not None and "optimizer" not in hyper
        return run

    def to_json(self):
        entries = dataclasses.asdict(self)
        del entries["folder"], entries["chief_folder"]
        for key in self._OPTIONAL:
            if entries[key] is None:
                del entries[key]
        return entries

    @classmethod
    def in_memory(cls, impl, model, num_classes, image_size, **hyper):
        """A record of no folder, for building a half's training graph or model outside train.py (benchmarks,
        tests): ``hyper`` overrides train.py's defaults."""
        return cls(folder=None, impl=impl, model=model, num_classes=num_classes,
                   labels=[str(i) for i in range(num_classes)], image_size=image_size, preprocessing={},
                   hyper=Hyper(**hyper), state="in memory")

    def save(self):
        write_json(os.path.join(self.folder, RUN_JSON), self.to_json())

    def path(self, *names):
        """A file of the run folder: ``run.path(MODERN_BEST)``."""
        return os.path.join(self.folder, *names)

    def resume_at(self, step):
        """Record that this attempt starts at global step ``step`` (> 0: a resumed run), at once: it may be
        killed before its first epoch ends. Returns ``step``."""
        if step:
            self.resumed_from_steps.append(step)
            self.save()
        return step

    def update(self, **entries):
        """Set ``entries`` in the ``run.json`` on disk, leaving the rest as it is there (evaluate, export)."""
        latest = Run.read(self.folder)
        for key, value in entries.items():
            setattr(latest, key, value)
            setattr(self, key, value)
        latest.save()

    def complete(self):
        """Mark the run finished: every epoch asked for is recorded."""
        self.state = "complete"
        self.save()
        plot_curves(self.folder, self.epochs)

    def check_same(self, wanted):
        """Refuse to resume a run made with another impl / model / image size / label set / preprocessing recipe."""
        for key in IDENTITY:
            found, want = getattr(self, key), getattr(wanted, key)
            if found != want:
                what = "label set" if key == "labels" else key.replace("_", " ")
                raise UserError(f"{self.folder} holds a run with another {what} ({found!r}, not {want!r});"
                                " pass --fresh to start it over, or choose another --run-dir")
        found, want = ((r.preprocessing or {}).get("recipe", "default") for r in (self, wanted))
        if found != want:
            raise UserError(f"{self.folder} holds a run with another preprocessing ({found!r}, not {want!r});"
                            " pass --fresh to start it over, or choose another --run-dir")
        for key in recipe.IDENTITY:
            found, want = getattr(self.hyper, key), getattr(wanted.hyper, key)
            if found != want:
                raise UserError(f"{self.folder} holds a run with another {key.replace('_', ' ')} ({found!r}, not"
                                f" {want!r}); pass --fresh to start it over, or choose another --run-dir")
        if self.impl == "modern" and getattr(self, "before_recipe", False) and os.path.isdir(self.path(MODERN_BACKUP)):
            raise UserError(f"{self.folder}: an unfinished modern run from before --optimizer, whose backup holds"
                            " Keras SGD's momentum (not TF1's, which modern now uses); finish it with that version"
                            " of train.py, or pass --fresh")

    def best_to_beat(self, done):
        """The validation accuracy an epoch after the first ``done`` must exceed to be the best, as
        ``record_epoch`` decides it; None when the best epoch is one this attempt runs again (a run resumed from a
        backup older than its last recorded epoch), whose rerun is the best whatever its accuracy. A half's
        best-checkpoint callback starts from it, so that best.h5 holds the weights of the epoch run.json names.

        On a cluster's other workers (``chief_folder`` set) the chief's record decides: Keras's callback saves on
        every worker (there to a scratch file), and reading a variable synchronised on read (BN's moving
        statistics) takes every worker, so all must save at the same epochs as the chief."""
        chief = Run.read(self.chief_folder) if self.chief_folder else None
        best = (chief or self).best
        if best is None or best["epoch"] > done:
            return None
        return best["val_accuracy"]

    def record_epoch(self, metrics):
        """Add one epoch's metrics to the record, update ``best``, save it and redraw the curves.

        An epoch recorded before (a run resumed from a checkpoint older than its last epoch end) is replaced.
        Returns True when this epoch is the best so far by validation accuracy.
        """
        self.epochs = [e for e in self.epochs if e["epoch"] < metrics["epoch"]] + [metrics]
        best = self.best
        improved = best is None or best["epoch"] >= metrics["epoch"] or metrics["val_accuracy"] > best["val_accuracy"]
        if improved:
            self.best = {"epoch": metrics["epoch"], "val_accuracy": metrics["val_accuracy"]}
        self.save()
        plot_curves(self.folder, self.epochs)
        return improved


def resolve(folder):
    """The run evaluate / use_model / export read: ``folder``, or ``runs/latest``; a UserError if there is none."""
    path = folder or os.path.join("runs", LATEST)
    run = Run.read(path)
    if run is None:
        hint = "train one with scripts/train.py" if folder is None else "give the folder train.py wrote"
        raise UserError(f"{path}: no run here (no {RUN_JSON}); {hint}")
    return run


def converted(folder, impl, model, labels, image_size, preprocessing, converted_from):
    """The record of a checkpoint converted into a run of ``impl`` (convert_checkpoint.py)."""
    return Run(folder=folder, impl=impl, model=model, num_classes=len(labels), labels=labels,
               image_size=image_size, preprocessing=preprocessing, state="converted", converted_from=converted_from)


# --- files --------------------------------------------------------------------------------------------

def mark_latest(folder):
    """Point ``<parent>/latest`` at ``folder``, replacing the link atomically."""
    folder = Path(folder).resolve()
    link = folder.parent / LATEST
    if link.exists() and not link.is_symlink():
        return  # a real folder named "latest": leave it alone
    with atomic(link) as tmp:  # beside the runs: the next mark_latest removes a killed one's .tmp-<pid>-latest
        os.symlink(folder.name, tmp)


def remove_leftovers(folder):
    """Delete what a killed run was writing: TensorFlow's ``*.tempstate*`` files and ``*_temp`` folders (a Saver
    or Checkpoint save cut short; as large as a checkpoint, and never cleaned by TensorFlow) and our own
    ``.tmp-*`` files and folders (``core.files.atomic``'s). Safe only while holding the folder's lock."""
    for parent, dirs, names in os.walk(folder):
        for name in names:
            if ".tempstate" in name or name.startswith(TEMPORARY):
                os.unlink(os.path.join(parent, name))
        for name in [d for d in dirs if d.endswith("_temp") or d.startswith(TEMPORARY)]:
            shutil.rmtree(os.path.join(parent, name))
            dirs.remove(name)


@contextlib.contextmanager
def locked(folder):
    """Hold ``folder``'s lock for the block; a second training there is refused (the lock dies with its process)."""
    with files.locked(os.path.join(folder, LOCK), f"{folder}: another training is running there; wait for it or"
                      " choose another --run-dir"):
        yield


@contextlib.contextmanager
def created(folder):
    """Yield a temporary folder beside ``folder`` to write a run into; it becomes ``folder`` (which must be absent
    or empty) when the block ends, and is deleted if it fails."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    with atomic(os.path.abspath(folder)) as tmp:  # beside it: .tmp-<pid>-<name>
        os.makedirs(tmp)
        yield tmp
        if os.path.isdir(folder):
            os.rmdir(folder)


# --- training -------------------------------------------------------------------------------------------

@contextlib.contextmanager
def training(new, fresh=False, chief=True):
    """Open ``new.folder`` to train the run ``new`` describes; yield the record to train (or, done, the complete one).

    Under the folder's lock, with a killed run's leftovers deleted: ``fresh`` empties the folder; a run there
    of another impl / model / image size / label set, or a converted checkpoint, is refused; a complete run
    with at least ``new.hyper.epochs`` epochs is yielded as it is (``state == "complete"``: nothing to do); any
    other run there is resumed (or continued to
    the new epoch count); an empty folder starts ``new``. ``chief``: the worker that owns ``runs/latest`` (the
    only one without a cluster). The lock is held until the block ends (the export after training included).
    """
    folder = new.folder
    os.makedirs(folder, exist_ok=True)
    with locked(folder):
        remove_leftovers(folder)
        run = Run.read(folder)
        if fresh:
            for entry in os.listdir(folder):
                if entry != LOCK and (run is not None or entry.startswith(".")):
                    path = os.path.join(folder, entry)
                    shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
            run = None
        if run is None and [e for e in os.listdir(folder) if not e.startswith(".")]:
            raise UserError(f"{folder} is not empty and holds no run; choose another --run-dir")
        if run is not None and run.state == "converted":
            raise UserError(f"{folder} holds a converted checkpoint, not a training run; fine-tune from it with"
                            f" --init-from {folder} and another --run-dir")
        if run is not None:
            run.check_same(new)
            if run.state == "complete" and len(run.epochs) >= new.hyper.epochs:
                yield run
                return
            run.hyper.epochs = new.hyper.epochs
            run.state = "running"
        else:
            run = new
        write_labels(os.path.join(folder, LABELS), run.labels)
        run.save()
        if chief:
            mark_latest(folder)
        yield run


@contextlib.contextmanager
def writer_folder(folder, chief=True, scratch=None):
    """The folder this process writes the run in: ``folder`` for the chief (or the only process); a worker of a
    cluster other than the chief writes a scratch copy in ``scratch``, or in a temporary folder deleted at the
    end (its checkpoints are the strategy's, not the run's)."""
    if chief:
        yield folder
    elif scratch is not None:
        yield scratch
    else:
        temporary = tempfile.mkdtemp(prefix="train-worker-")
        try:
            yield temporary
        finally:
            shutil.rmtree(temporary, ignore_errors=True)


# --- curves -----------------------------------------------------------------------------------------------

def pyplot():
    """matplotlib's pyplot drawing to files only (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path):
    """Save ``fig`` as PNG under a temporary name, rename it to ``path``, and close it."""
    with atomic(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    pyplot().close(fig)


def plot_curves(folder, epochs):
    """``curves.png``: loss and accuracy per epoch, train and validation."""
    plt = pyplot()
    x = [e["epoch"] for e in epochs]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(x, [e[metric] for e in epochs], "o-", label="train")
        ax.plot(x, [e[f"val_{metric}"] for e in epochs], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, os.path.join(folder, CURVES))
