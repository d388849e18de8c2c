"""Export a trained run for serving: ``python scripts/export.py [RUN_DIR]``.

The command is ``cli/export.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.export import command  # noqa: E402

command()
