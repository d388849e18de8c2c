"""Classify images with a trained run: ``python scripts/use_model.py IMAGE_OR_FOLDER [...]``.

The article's useModel.py, for runs of every half. Prints, for each image, its K most likely classes, best
first, one line each: ``path<TAB>class<TAB>probability``. A folder is searched for images (hidden entries
skipped) and predicted in batches. Images are decoded and preprocessed exactly as in training (flowio's
recorded preprocessing). A file that is missing or not an image is reported on stderr; the others are
still predicted, and the exit status is then 2. A path or class name holding a tab or a line break (\\t, \\n,
\\r) cannot be put in such a line: it is refused, named, before anything is predicted (exit status 2); --json
carries any name.

Two backends: litert runs the run's model.tflite (written by scripts/export.py and at the end of training)
with LiteRT and never imports TensorFlow, so it answers in well under a second; native (tf is its old name)
rebuilds the model in the half that trained it: a legacy Session, tf_keras, or Keras 3 on --keras-backend.
auto takes litert when the run has a current model.tflite and ai-edge-litert is installed, else native. Both
decode with Pillow, which equals TensorFlow's JPEG decoding as pinned.
"""

import argparse
import json
import os
import sys
from functools import partial

import numpy as np

from core import halves, keras_backend, kernels, lite, metrics
from core import run_dir as rd
from core.errors import UserError, run_cli

BATCH = 32


def parse_args(argv):
    p = argparse.ArgumentParser(prog="use_model.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders of images")
    p.add_argument("--run-dir", metavar="DIR", help="the trained run to use (default: runs/latest)")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes per image (at most the number"
                   " of classes; default 5)")
    p.add_argument("--backend", choices=["auto", "litert", "native", "tf"], default="auto",
                   help="what runs the model: litert (the run's model.tflite, no TensorFlow import), native"
                   " (the half that trained it; tf is its old name), auto (litert when the run has a current"
                   " model.tflite and ai-edge-litert is installed, else native)")
    p.add_argument("--keras-backend", choices=keras_backend.BACKENDS, help=keras_backend.HELP)
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines (it carries any"
                   " name, a tab or line break included)")
    return p.parse_args(argv)


def image_paths(inputs):
    """Expand folders into their files (sorted, hidden entries skipped); keep files as given."""
    for item in inputs:
        if os.path.isdir(item):
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in sorted(filenames):
                    if not f.startswith("."):
                        yield os.path.join(dirpath, f)
        else:
            yield item


# Refused, not escaped: no escape keeps every other name's line byte for byte (the escape character must be
# escaped in turn, and a Linux path may hold any character but NUL), so linear TSV's \t \n \\
# would silently change today's lines of names holding a backslash (Windows paths unpacked from a zip), read
# with a plain split on tabs. Refusing changes no line that works, and --json already carries any name.
# \r too: Python's text mode and csv read it as a line end.
TSV_BREAKERS = ("\t", "\n", "\r")


def check_tsv(paths, labels):
    """Raise a UserError naming the first path or class name that a ``path<TAB>class<TAB>probability`` line
    cannot carry, before the model is loaded."""
    for what, names in (("file name", paths), ("class name", labels)):
        bad = [n for n in names if any(c in n for c in TSV_BREAKERS)]
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise UserError(f"{bad[0]!r}{more}: a {what} holding a tab or a line break cannot be written as a"
                            " tab-separated line; use --json, which carries any name")


def backend(args, run):
    """``(name, predictor, load)``: ``predictor(batch) -> probabilities``, ``load(path) -> one batch element``."""
    from flowio.images import load_image
    tflite = lite.model_path(run)
    if args.backend == "litert":
        if not os.path.exists(tflite):
            raise UserError(f"{run.folder}: no model.tflite; make it with scripts/export.py {run.folder}")
        if not lite.installed():
            raise UserError("--backend litert: the ai-edge-litert package is not installed (pip install"
                            " ai-edge-litert), or use --backend native")
    if args.backend == "litert" or (args.backend == "auto" and lite.installed() and lite.current(run)):
        return "litert", lite.LitePredictor(tflite), load_image
    keras_backend.choose(args.keras_backend, run.impl)
    kernels.choose("predict")
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
    import flowio
    model = halves.half(run.impl).Predictor(run)
    kernels.say("use_model")
    return ("native" if args.backend == "native" else "tf", lambda images: metrics.softmax(model(images)),
            lambda path: flowio.preprocess(load_image(path), run.image_size, run.preprocessing).numpy())


def predictions(paths, load, predict, labels, k, echo):
    """``(results, errors)``: the top ``k`` of each image of ``paths``, predicted in batches of up to ``BATCH``
    images of one size; a file that does not load is an error line and the rest go on; ``echo`` prints each
    answer as a TSV line as soon as its batch is done."""
    results, errors, pending = [], [], []  # pending: (path, image) of the next batch

    def flush():
        if not pending:
            return
        for (path, _), p in zip(pending, predict(np.stack([image for _, image in pending]))):
            best = metrics.top_k(p, labels, k)
            results.append({"path": path, "predictions": [{"class": c, "probability": q} for c, q in best]})
            if echo:
                for c, q in best:
                    print(f"{path}\t{c}\t{q:.6f}")
        pending.clear()

    for path in paths:
        try:
            image = load(path)
        except UserError as err:
            errors.append(str(err))
            print(f"use_model.py: error: {err}", file=sys.stderr)
            continue
        if pending and image.shape != pending[0][1].shape:  # litert: a batch holds one size
            flush()
        pending.append((path, image))
        if len(pending) == BATCH:
            flush()
    flush()
    return results, errors


def main(argv=None):
    args = parse_args(argv)
    run = rd.resolve(args.run_dir)
    if args.top_k < 1:
        raise UserError(f"--top-k {args.top_k}: must be at least 1")
    k = min(args.top_k, run.num_classes)
    paths = list(image_paths(args.inputs))
    if not args.json:
        check_tsv(paths, run.labels)
    name, predict, load = backend(args, run)

    results, errors = predictions(paths, load, predict, run.labels, k, echo=not args.json)
    if args.json:
        print(json.dumps({"run_dir": run.folder, "backend": name, "results": results, "errors": errors}, indent=2,
                         ensure_ascii=False))
    return 2 if errors else 0


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
