"""Classify images with a trained run: ``python scripts/use_model.py IMAGE_OR_FOLDER [...]``.

The command is ``cli/use_model.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.use_model import command  # noqa: E402

command()
