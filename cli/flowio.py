"""Turn a folder of images into sharded TFRecords: ``python scripts/flowio.py [DATA_DIR] [--out DIR]``.

DATA_DIR holds one sub-folder per class (its name is the class name; images in deeper folders belong to
it). Writes DIR/train-*.tfrecord, DIR/validation-*.tfrecord, DIR/labels.txt and DIR/manifest.json.
"""

import argparse
import os
from functools import partial

from flowio.convert import convert
from core.errors import run_cli


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="flowio.py", description=__doc__.split("\n\n", 1)[1].strip(),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("data_dir", nargs="?", default="data", metavar="DATA_DIR",
                   help="folder with one sub-folder of images per class")
    p.add_argument("--out", default="tfrecords", metavar="DIR", help="output folder")
    p.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                   help="share of each class held out for validation (0 <= F < 1)")
    p.add_argument("--shards", type=int, default=4, metavar="N",
                   help="files per split (fewer when a split has fewer images)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="processes that decode and check the images (the output does not depend on it)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the train/validation split")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output folder made from another source or with other options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    m = convert(args.data_dir, args.out, val_fraction=args.val_fraction, shards=args.shards, seed=args.seed,
                workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    n = m["num_examples"]
    print(f"flowio: {n['train'] + n['validation']} images in {len(m['classes'])} classes"
          f" ({n['train']} train, {n['validation']} validation) -> {args.out};"
          f" {len(m['skipped'])} skipped (reasons in {os.path.join(args.out, 'manifest.json')})")


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
