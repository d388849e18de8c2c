"""Export a trained run for serving: ``python scripts/export.py [RUN_DIR]``.

Writes into the run folder (default runs/latest), from its best weights, whichever half trained it:
model.tflite, which LiteRT runs without TensorFlow (use_model.py --backend litert; input: decoded RGB uint8
images of any size, resized and scaled inside), and saved_model/, whose serving_default signature takes
encoded JPEG / PNG bytes for TF Serving (TensorFlow's decoders ignore EXIF orientation: send upright images).
train.py exports at the end of every run.
"""

import argparse
import os
from functools import partial

from core import kernels
from core import run_dir as rd
from core.errors import run_cli


def parse_args(argv):
    p = argparse.ArgumentParser(prog="export.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a run folder (default: runs/latest)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    run = rd.resolve(args.run_dir)
    kernels.choose("predict")
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
    from modern.export import export
    kernels.say("export")
    entry = export(run)
    size = os.path.getsize(run.path(entry["tflite"]))
    print(f"export: {run.folder}: {entry['tflite']} ({size / 2**20:.1f} MiB) and {entry['saved_model']}/ from"
          f" {entry['weights']}")
    return 0


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
