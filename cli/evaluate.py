"""Evaluate a trained run: ``python scripts/evaluate.py [RUN_DIR] [--data DIR] [--json]``.

The article's Evaluation.py, for runs of every half: top-1 accuracy, top-5 when there are at least 5
classes, accuracy per class and the confusion matrix (printed, and saved as confusion.png in the run
folder). The metrics are also written into the run's run.json under "evaluation". --data takes flowio
records (their validation split) or a plain folder of class folders.
"""

import argparse
import json
from functools import partial

from core import halves, keras_backend, kernels, metrics
from core import run_dir as rd
from core.errors import UserError, run_cli


def parse_args(argv):
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("--data", metavar="DIR",
                   help="flowio records (validation split) or a folder of class folders (default: the run's records)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a report")
    p.add_argument("--keras-backend", choices=keras_backend.BACKENDS, help=keras_backend.HELP)
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a run folder (default: runs/latest)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    run = rd.resolve(args.run_dir)
    data = args.data or run.data
    if data is None:
        raise UserError(f"{run.folder} was converted, not trained, so it names no data; give --data")
    keras_backend.choose(args.keras_backend, run.impl)
    kernels.choose("predict")
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
    import flowio
    batches = flowio.labelled_batches(data, run.labels, run.image_size, recipe=run.preprocessing)
    predictor = halves.half(run.impl).Predictor(run)
    kernels.say("evaluate")
    result = metrics.evaluate(run, predictor, batches, data)
    print(json.dumps(result, indent=2) if args.json else metrics.report(result, run.labels, run.folder))
    return 0


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
