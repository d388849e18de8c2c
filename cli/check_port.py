"""Check your own port against its TF1 original: ``python scripts/check_port.py LEGACY MODERN``.

LEGACY is package.module:function, a slim model function fn(images, num_classes, is_training) returning logits or
(logits, end_points); MODERN is package.module:function, fn(num_classes) returning the tf_keras or Keras 3 model
written for it (Keras 3 on the backend --keras-backend names). Both are imported from the current folder (or the installed packages). The check builds the TF1 graph with
values that expose mistakes (random kernels, BN statistics far from 0 and 1, a head whose softmax is not one-hot)
and writes them as a TF1 checkpoint; maps it onto the Keras model by the naming rule (layer a__b holds
<model>/a/b/weights as its kernel); compares the logits and each end point, naming the first that differs and the
likely cause; and runs one training step on both. Exit status 0 when everything passes, 1 when the port differs,
2 on a usage error.
"""

import argparse
import json
from functools import partial

from cli.convert_checkpoint import rename_rule
from core import keras_backend, recipe
from core.errors import run_cli


def parse_args(argv):
    p = argparse.ArgumentParser(prog="check_port.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("legacy", metavar="LEGACY", help="package.module:function, slim's fn(images, num_classes,"
                   " is_training) -> logits or (logits, end_points)")
    p.add_argument("modern", metavar="MODERN", help="package.module:function, fn(num_classes) -> a tf_keras or"
                   " Keras 3 Model returning logits [N, classes]")
    p.add_argument("--image-size", type=int, metavar="S", help="square input size (default: the Keras model's"
                   " input size, else 224)")
    p.add_argument("--num-classes", type=int, default=10, metavar="N", help="classes of the head (default 10)")
    p.add_argument("--arg-scope", metavar="package.module:function", help="a function returning the slim arg"
                   " scope LEGACY is built under, when LEGACY does not apply it itself (e.g. a net's"
                   " resnet_arg_scope)")
    p.add_argument("--rename", action="append", default=[], type=rename_rule, metavar="REGEX=REPL",
                   help="rewrite the TF1 variable names with re.sub before matching them to Keras weights (e.g."
                   " '^my_scope/=net/'); repeatable, applied in order")
    p.add_argument("--optimizer", choices=recipe.OPTIMIZERS, default="momentum",
                   help="the training step's optimizer: TF1's in the Session, this project's TF1-exact Keras"
                   " one (modern's or keras3's) in the port (default momentum, lr 0.01)")
    p.add_argument("--keras-backend", choices=keras_backend.BACKENDS, help="a Keras 3 port: the backend it runs"
                   " on (default: the KERAS_BACKEND variable, else tensorflow)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    if args.image_size is not None and args.image_size < 1:
        p.error("--image-size must be positive")
    if args.num_classes < 2:
        p.error("--num-classes must be at least 2")
    return args


def main(argv=None):
    args = parse_args(argv)
    keras_backend.choose(args.keras_backend)
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
    from portcheck import check, format_report
    from portcheck.user import resolve
    report = check(resolve(args.legacy, "LEGACY"), resolve(args.modern, "MODERN"), image_size=args.image_size,
                   num_classes=args.num_classes,
                   arg_scope=resolve(args.arg_scope, "--arg-scope") if args.arg_scope else None,
                   renames=args.rename, optimizer=args.optimizer)
    print(json.dumps(report, indent=2, default=float) if args.json else format_report(report))
    return 0 if report["passed"] else 1


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
