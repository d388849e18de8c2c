"""Turn a folder of images into sharded TFRecords: ``python scripts/flowio.py [DATA_DIR] [--out DIR]``.

The command is ``cli/flowio.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.flowio import command  # noqa: E402

command()
