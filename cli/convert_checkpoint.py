"""Move a model between the halves: ``python scripts/convert_checkpoint.py SRC --out RUN_DIR [--to legacy]``.

SRC is a run directory of either half, a TF1 name-based checkpoint (a Saver prefix such as
``model.ckpt-1200``, or the folder holding it) — one of a legacy run, or one written by ``tf_slim.nets``
itself — or a modern ``.h5`` weights file. The result is a run directory of the other half (``--to``) that
evaluate.py and use_model.py accept, and that train.py fine-tunes from with ``--init-from``. Variables map by
name (core/checkpoints.py); a variable missing, left over or of another shape is an error that lists them.
The model, the number of classes, the labels and the image size come from SRC's run.json when it has one, and
otherwise from the flags (the model and the number of classes are read from a TF1 checkpoint when not given).

research/slim's own checkpoints: ``--drop-background-class`` for its 1001-class ImageNet nets (inception,
resnet_v2; kept, class 0 is labelled ``background``), ``--use-ema`` for the moving averages it evaluated,
``--rename`` for a checkpoint saved under another scope, ``--list`` to see what each variable would become.
inception_v3 at another ``--image-size`` than the checkpoint's: its auxiliary head's ``Conv2d_2a_{k}x{k}`` has a
kernel as wide as the head's pooled map, so its name and shape follow the size (research/slim's 5x5 holds at 299
to 346, 224 has 3x3). That layer is left initialised and said so, all else is converted: the auxiliary head is
training-only (predictions and exports never use it) and no kernel of one size computes what one of another does.
"""

import argparse
import os
from functools import partial
from types import SimpleNamespace

from core import checkpoints, files, halves, models
from core import run_dir as rd
from core.errors import UserError, run_cli
from core.run_dir import IMPLS


def parse_args(argv):
    p = argparse.ArgumentParser(prog="convert_checkpoint.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("src", metavar="SRC", help="a run directory, a TF1 / tf_slim checkpoint (prefix or folder),"
                   " or a modern .h5 weights file")
    p.add_argument("--out", metavar="RUN_DIR", help="the run directory to write (must not exist, or be empty);"
                   " required unless --list")
    p.add_argument("--to", choices=IMPLS, help="the half to convert to (default: legacy for a modern run or"
                   " .h5 file, modern for anything else: a TF1 checkpoint, a legacy or keras3 run); keras3 writes"
                   " its weights by TF1 name, which either Keras backend reads")
    p.add_argument("--model", help="registered model name (default: SRC's run.json, or the checkpoint's"
                   " top-level scope)")
    p.add_argument("--num-classes", type=int, metavar="N", help="classes of the model's head (default: from"
                   " SRC)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line (or labels.txt's 'i:name');"
                   " default: SRC's, else 0..N-1")
    p.add_argument("--image-size", type=int, metavar="S", help="input size the run predicts at (default:"
                   " SRC's, else the model's)")
    p.add_argument("--preprocessing", choices=models.RECIPES, metavar="RECIPE",
                   help="the run's preprocessing recipe: default, inception or vgg (see train.py --help; default:"
                   " SRC's run.json, else the model's, research/slim's for its nets)")
    p.add_argument("--drop-background-class", dest="labels_offset", action="store_const", const=1, default=0,
                   help="the checkpoint's class 0 is research/slim's 'background' (its 1001-class ImageNet nets):"
                   " cut it from the head, so class k+1 becomes class k (default: keep it, labelled 'background')")
    p.add_argument("--labels-offset", dest="labels_offset", type=int, choices=(0, 1),
                   help="research/slim's eval flag: 1 is --drop-background-class, 0 keeps every class")
    p.add_argument("--use-ema", action="store_true", help="take each variable's <name>/ExponentialMovingAverage"
                   " shadow where the checkpoint has one (research/slim trained with --moving_average_decay and"
                   " evaluated the averages), the raw value elsewhere")
    p.add_argument("--rename", action="append", default=[], type=rename_rule, metavar="REGEX=REPL",
                   help="rewrite the checkpoint's variable names with re.sub before matching, e.g."
                   " '^tower_0/=' or '^my_scope/=InceptionV3/'; repeatable, applied in order")
    p.add_argument("--list", action="store_true", help="print every variable of the checkpoint (after --rename,"
                   " --use-ema, --drop-background-class) with its fate: matched, missing, unexpected, other shape,"
                   " optimizer slot, global_step, EMA shadow, left out / initialised (inception_v3's auxiliary"
                   " kernel at another size); write nothing")
    args = p.parse_args(argv)
    if args.out is None and not args.list:
        p.error("the following arguments are required: --out (or --list)")
    return args


def rename_rule(text):
    """``REGEX=REPL`` -> ``(REGEX, REPL)``; the regex must compile."""
    import re
    pattern, sep, replacement = text.partition("=")
    if not sep or not pattern:
        raise argparse.ArgumentTypeError(f"{text!r}: give REGEX=REPL")
    try:
        re.compile(pattern)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"{pattern!r}: {err}") from None
    return pattern, replacement


def read_labels(path):
    try:
        return files.read_labels(path)
    except OSError as err:
        raise UserError(f"--labels {path}: {err.strerror}") from None


def which_model(args, values, source_run, half):
    """The registered model SRC holds: --model, SRC's run.json, or the one model whose scope the checkpoint has."""
    model = args.model or source_run.model or checkpoints.identify(values, half.list_models())
    if model is None:
        raise UserError(f"{args.src}: cannot tell the model (scopes: {', '.join(checkpoints.models_in(values))});"
                        " give --model")
    if model not in half.list_models():
        raise UserError(f"--model {model}: not a registered model (see train.py --list-models)")
    if source_run.model not in (None, model):
        raise UserError(f"{args.src} holds a {source_run.model} run, not {model}")
    return model


def describe(args, values, source_run, model):
    """``(labels, image_size, preprocessing)`` from the flags, SRC's run.json and the checkpoint's values."""
    import flowio
    head = values.get(f"{models.heads(model)[0]}/weights")  # [..., features, classes]
    num_classes = args.num_classes or source_run.num_classes or (head.shape[-1] if head is not None else None)
    if not num_classes:
        raise UserError(f"{args.src}: cannot tell the number of classes; give --num-classes")
    labels = checkpoints.class_names(num_classes, read_labels(args.labels) if args.labels else source_run.labels)
    if len(labels) != num_classes:
        raise UserError(f"{len(labels)} labels for a model of {num_classes} classes; give --labels with"
                        f" {num_classes} names")
    size = args.image_size or source_run.image_size or models.default_input_size(model)
    try:
        models.check_size(model, size)
    except ValueError as err:
        raise UserError(f"--image-size {size}: {err}") from None
    if args.preprocessing is None and source_run.preprocessing and size == source_run.image_size:
        preprocessing = source_run.preprocessing  # a run keeps its own, vgg's sides and their rounding included
    else:  # vgg's sides are the size's: a new record (of SRC's recipe unless --preprocessing says another)
        recipe = args.preprocessing or (flowio.recipe_of(source_run.preprocessing) if source_run.preprocessing
                                        else models.spec(model).preprocessing)
        preprocessing = flowio.preprocessing_spec(size, flip=False, recipe=recipe)
    return labels, size, preprocessing


def list_fates(raw, values, shadows, run, to):
    """``--list``: one line per variable (name, shape, fate), then how many of each fate."""
    from collections import Counter
    rows = checkpoints.listing(halves.half(to).variable_shapes(run), raw, values, shadows, run.model, run.image_size)
    width = max(len(name) for name, _, _ in rows)
    for name, shape, fate in rows:
        print(f"{name:<{width}}  {str(shape):<22}  {fate}")
    counts = Counter(fate.split(" (")[0] for _, _, fate in rows)
    print("convert_checkpoint: " + ", ".join(f"{n} {fate}" for fate, n in sorted(counts.items()))
          + f"; {run.model} at {run.num_classes} classes; nothing written")


def main(argv=None):
    args = parse_args(argv)
    if args.out is not None and os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise UserError(f"--out {args.out}: exists and is not an empty folder; choose a new one")
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
    source_run = rd.Run.read(args.src) if os.path.isdir(args.src) else None
    source_impl = source_run.impl if source_run else ("modern" if args.src.endswith(".h5") else "legacy")
    to = args.to or ("legacy" if source_impl == "modern" else "modern")
    model = args.model or (source_run.model if source_run else None)
    raw, source = checkpoints.read(args.src, None if model is None else models.scope(model))
    raw = checkpoints.renamed(raw, args.rename)
    source_run = source_run or SimpleNamespace(model=None, num_classes=None, labels=None, image_size=None,
                                               preprocessing=None)
    model = which_model(args, raw, source_run, halves.half(to))
    values, shadows = checkpoints.prepared(raw, models.heads(model), args.use_ema, args.labels_offset)
    labels, size, preprocessing = describe(args, values, source_run, model)
    options = {"rename": [f"{a}={b}" for a, b in args.rename], "use_ema": args.use_ema,
               "labels_offset": args.labels_offset}
    converted_from = {"source": source, "path": os.path.abspath(args.src), "impl": source_impl, **options}
    if args.list:
        return list_fates(raw, values, shadows, rd.converted(None, to, model, labels, size, preprocessing,
                                                             converted_from), to)
    with rd.created(args.out) as tmp:
        run = rd.converted(tmp, to, model, labels, size, preprocessing, converted_from)
        count, resized = halves.half(to).write_weights(run, values, source)
        run.converted_from["variables"] = count
        if resized:
            run.converted_from["initialised"] = [ours for _, ours in resized]
        rd.write_labels(os.path.join(tmp, rd.LABELS), labels)
        run.save()
    print(f"convert_checkpoint: {source} -> {to} run {args.out} ({model}, {len(labels)} classes, {count} variables)")
    for theirs, ours in resized:
        print(f"convert_checkpoint: {theirs} left out, {ours} initialised: the auxiliary head's kernel follows the"
              f" image size ({size} here); it only trains, predictions and exports leave it out")
    return 0


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
