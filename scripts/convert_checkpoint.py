"""Move a model between the halves: ``python scripts/convert_checkpoint.py SRC --out RUN_DIR [--to legacy]``.

SRC is a run directory of either half, a TF1 name-based checkpoint (a Saver prefix such as
``model.ckpt-1200``, or the folder holding it) — one of a legacy run, or one written by ``tf_slim.nets``
itself — or a modern ``.h5`` weights file. The result is a run directory of the other half (``--to``) that
evaluate.py and use_model.py accept, and that train.py fine-tunes from with ``--init-from``. Variables map by
name (core/checkpoints.py); a variable missing, left over or of another shape is an error that lists them.
The model, the number of classes, the labels and the image size come from SRC's run.json when it has one, and
otherwise from the flags (the model and the number of classes are read from a TF1 checkpoint when not given).
"""

import argparse
import importlib
import os
import sys
from types import SimpleNamespace

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from core import checkpoints  # noqa: E402
from core import models  # noqa: E402
from core import run_dir as rd  # noqa: E402
from core.errors import UserError, run_cli  # noqa: E402
from core.run_dir import IMPLS  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="convert_checkpoint.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("src", metavar="SRC", help="a run directory, a TF1 / tf_slim checkpoint (prefix or folder),"
                   " or a modern .h5 weights file")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="the run directory to write (must not exist,"
                   " or be empty)")
    p.add_argument("--to", choices=IMPLS, help="the half to convert to (default: the other half than SRC's;"
                   " modern for a TF1 checkpoint)")
    p.add_argument("--model", help="registered model name (default: SRC's run.json, or the checkpoint's"
                   " top-level scope)")
    p.add_argument("--num-classes", type=int, metavar="N", help="classes of the model's head (default: from"
                   " SRC)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line (or labels.txt's 'i:name');"
                   " default: SRC's, else 0..N-1")
    p.add_argument("--image-size", type=int, metavar="S", help="input size the run predicts at (default:"
                   " SRC's, else the model's)")
    return p.parse_args(argv)


def read_labels(path):
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
    except OSError as err:
        raise UserError(f"--labels {path}: {err.strerror}") from None
    if lines and all(":" in line and line.split(":", 1)[0].isdigit() for line in lines):
        lines = [line.split(":", 1)[1] for line in lines]
    return lines


def describe(args, values, source_run, half):
    """``(model, labels, image_size, preprocessing)`` from the flags, SRC's run.json and the checkpoint's values."""
    import flowio
    source_run = source_run or SimpleNamespace(model=None, num_classes=None, labels=None, image_size=None,
                                               preprocessing=None)
    model = args.model or source_run.model
    if model is None:
        known = [m for m in checkpoints.models_in(values) if m in half.list_models()]
        if len(known) != 1:
            raise UserError(f"{args.src}: cannot tell the model (scopes: {', '.join(checkpoints.models_in(values))});"
                            " give --model")
        model = known[0]
    if model not in half.list_models():
        raise UserError(f"--model {model}: not a registered model (see train.py --list-models)")
    if source_run.model not in (None, model):
        raise UserError(f"{args.src} holds a {source_run.model} run, not {model}")
    head = values.get(f"{model}/{models.spec(model).head}/weights")  # [..., features, classes]
    num_classes = args.num_classes or source_run.num_classes or (head.shape[-1] if head is not None else None)
    if not num_classes:
        raise UserError(f"{args.src}: cannot tell the number of classes; give --num-classes")
    labels = read_labels(args.labels) if args.labels else source_run.labels or [str(i) for i in range(num_classes)]
    if len(labels) != num_classes:
        raise UserError(f"{len(labels)} labels for a model of {num_classes} classes; give --labels with"
                        f" {num_classes} names")
    size = args.image_size or source_run.image_size or models.default_input_size(model)
    try:
        models.check_size(model, size)
    except ValueError as err:
        raise UserError(f"--image-size {size}: {err}") from None
    preprocessing = source_run.preprocessing or flowio.preprocessing_spec(size, flip=False)
    return model, labels, size, preprocessing


def main(argv=None):
    args = parse_args(argv)
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise UserError(f"--out {args.out}: exists and is not an empty folder; choose a new one")
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
    source_run = rd.Run.read(args.src) if os.path.isdir(args.src) else None
    source_impl = source_run.impl if source_run else ("modern" if args.src.endswith(".h5") else "legacy")
    to = args.to or ("legacy" if source_impl == "modern" else "modern")
    values, source = checkpoints.read(args.src, args.model or (source_run.model if source_run else None))
    half = importlib.import_module(to)
    model, labels, size, preprocessing = describe(args, values, source_run, half)
    with rd.created(args.out) as tmp:
        run = rd.converted(tmp, to, model, labels, size, preprocessing,
                           {"source": source, "path": os.path.abspath(args.src), "impl": source_impl})
        count = importlib.import_module(f"{to}.train").write_weights(run, values, source)
        run.converted_from["variables"] = count
        rd.write_labels(tmp, labels)
        run.save()
    print(f"convert_checkpoint: {source} -> {to} run {args.out} ({model}, {len(labels)} classes, {count} variables)")
    return 0


if __name__ == "__main__":
    run_cli(main)
