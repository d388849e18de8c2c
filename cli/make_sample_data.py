"""Render scikit-learn's bundled digits (1,797 real 8x8 scans) as PNGs: DATA_DIR/<0..9>/digit_NNNN.png.

The sample data of the README's main job. Each scan's 17 grey levels (0 = paper, 16 = ink) become dark ink
on white paper, upscaled with bicubic interpolation to --size pixels. With --holdout N, the last N scans go
to --holdout-dir instead (named digit_NNNN_is_<label>.png), never seen by flowio or training: images to try
use_model.py on. Rerunning writes the same files.
"""

import argparse
import os
from functools import partial

import numpy as np
from PIL import Image

from core import files
from core.errors import UserError, run_cli


def main(argv=None):
    p = argparse.ArgumentParser(prog="make_sample_data.py", description=__doc__.split("\n\n", 1)[0])
    p.add_argument("out", nargs="?", default="data", metavar="DATA_DIR", help="folder to write (default: data)")
    p.add_argument("--size", type=int, default=32, help="side of the PNGs in pixels (default: 32)")
    p.add_argument("--holdout", type=int, default=0, metavar="N", help="keep the last N scans out of DATA_DIR")
    p.add_argument("--holdout-dir", default="samples", metavar="DIR", help="where the held-out scans go"
                   " (default: samples)")
    args = p.parse_args(argv)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("scikit-learn is not installed; pip install -e '.[sample]' (make demo does)") from None
    if args.size < 8:
        raise UserError(f"--size {args.size}: must be at least 8")
    digits = load_digits()
    kept = len(digits.images) - args.holdout
    if not 0 <= args.holdout < len(digits.images) - 20:
        raise UserError(f"--holdout {args.holdout}: must be between 0 and {len(digits.images) - 21}")
    for i, (scan, label) in enumerate(zip(digits.images, digits.target)):
        pixels = (255 - np.round(scan * 255 / 16)).astype(np.uint8)
        if i < kept:
            folder, name = os.path.join(args.out, str(label)), f"digit_{i:04d}.png"
        else:
            folder, name = args.holdout_dir, f"digit_{i:04d}_is_{label}.png"
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        with files.atomic(path) as tmp:  # hidden while written: flowio skips it if the run is killed
            Image.fromarray(pixels).resize((args.size, args.size), Image.BICUBIC).save(tmp, "PNG")
    print(f"make_sample_data: {kept} digits in 10 classes -> {args.out}/<0..9>/"
          + (f", {args.holdout} held out -> {args.holdout_dir}/" if args.holdout else ""))


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
