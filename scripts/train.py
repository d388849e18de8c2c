"""Train a classifier on flowio records: ``python scripts/train.py --impl {legacy,modern} [--model NAME] ...``.

The command is ``cli/train.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.train import command  # noqa: E402

command()
