"""Render scikit-learn's bundled digits (1,797 real 8x8 scans) as PNGs: DATA_DIR/<0..9>/digit_NNNN.png.

The command is ``cli/make_sample_data.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.make_sample_data import command  # noqa: E402

command()
