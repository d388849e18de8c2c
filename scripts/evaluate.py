"""Evaluate a trained run: ``python scripts/evaluate.py [RUN_DIR] [--data DIR] [--json]``.

The command is ``cli/evaluate.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.evaluate import command  # noqa: E402

command()
