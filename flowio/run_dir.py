"""The run directory both halves write and evaluate / use_model read (DESIGN §5).

``runs/<impl>-<model>/`` by default, and ``runs/latest``, a symlink to the run written last. It holds
``run.json`` (what was trained, on what, how, and how far: ``state`` is ``running`` or ``complete``),
``labels.txt``, the checkpoints (legacy: Saver files in ``ckpt/last`` and ``ckpt/best``; modern:
``last.keras``, ``best.h5`` and BackupAndRestore's ``backup/``), TensorBoard files in ``logs/`` and
``curves.png``. This module owns the parts that do not depend on the half: the rules for reusing a
folder, ``run.json``, the ``latest`` link and the curves.
"""

import importlib
import json
import os
from pathlib import Path

from flowio.errors import UserError

RUN_JSON = "run.json"
LABELS = "labels.txt"
CURVES = "curves.png"
LATEST = "latest"
IMPLS = ("legacy", "modern")  # the packages of the two halves; each has train.train and train.Predictor
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")  # train.py --precision: Keras's policy names
# What must match for a run folder to be resumed or continued.
IDENTITY = ("impl", "model", "image_size", "labels")


def default_run_dir(impl, model, root="runs"):
    return os.path.join(root, f"{impl}-{model}")


def read_run(run_dir):
    """``run.json`` of ``run_dir`` as a dict, or None when there is none."""
    path = os.path.join(run_dir, RUN_JSON)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, obj):
    """Write JSON atomically (temporary name, then rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def write_run(run_dir, run):
    write_json(os.path.join(run_dir, RUN_JSON), run)


def check_same_run(run_dir, found, wanted):
    """Refuse to resume a run made with another impl / model / image size / label set."""
    for key in IDENTITY:
        if found.get(key) != wanted[key]:
            what = "label set" if key == "labels" else key.replace("_", " ")
            raise UserError(f"{run_dir} holds a run with another {what} ({found.get(key)!r}, not {wanted[key]!r});"
                            " pass --fresh to start it over, or choose another --run-dir")


def mark_latest(run_dir):
    """Point ``<parent>/latest`` at ``run_dir``, replacing the link atomically."""
    run_dir = Path(run_dir).resolve()
    link = run_dir.parent / LATEST
    if link.exists() and not link.is_symlink():
        return  # a real folder named "latest": leave it alone
    tmp = run_dir.parent / f".{LATEST}.tmp{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, link)


def resolve_run_dir(run_dir):
    """The run folder evaluate / use_model read: ``run_dir`` or ``runs/latest``; a UserError if unusable."""
    path = run_dir or os.path.join("runs", LATEST)
    run = read_run(path)
    if run is None:
        hint = "train one with scripts/train.py" if run_dir is None else "give the folder train.py wrote"
        raise UserError(f"{path}: no run here (no {RUN_JSON}); {hint}")
    return path, run


def predictor(run_dir, run):
    """The run's best model as ``f(images float32 [N, S, S, 3]) -> logits``, whichever half trained it."""
    return importlib.import_module(f"{run['impl']}.train").Predictor(run_dir, run)


def write_labels(run_dir, labels):
    tmp = os.path.join(run_dir, LABELS + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(f"{i}:{name}\n" for i, name in enumerate(labels))
    os.replace(tmp, os.path.join(run_dir, LABELS))


def pyplot():
    """matplotlib's pyplot drawing to files only (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path):
    """Save ``fig`` as PNG under a temporary name, rename it to ``path``, and close it."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    fig.savefig(tmp, format="png", dpi=80)
    pyplot().close(fig)
    os.replace(tmp, path)


def plot_curves(run_dir, epochs):
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
    save_figure(fig, os.path.join(run_dir, CURVES))


def record_epoch(run_dir, run, metrics):
    """Add one epoch's metrics (``epoch`` counts from 1) to ``run``, update ``best``, rewrite ``run.json``.

    An epoch recorded before (a run resumed from a checkpoint older than its last epoch end) is replaced.
    Returns True when this epoch is the best so far by validation accuracy.
    """
    run["epochs"] = [e for e in run["epochs"] if e["epoch"] < metrics["epoch"]] + [metrics]
    best = run["best"]
    improved = best is None or best["epoch"] >= metrics["epoch"] or metrics["val_accuracy"] > best["val_accuracy"]
    if improved:
        run["best"] = {"epoch": metrics["epoch"], "val_accuracy": metrics["val_accuracy"]}
    write_run(run_dir, run)
    plot_curves(run_dir, run["epochs"])
    return improved
