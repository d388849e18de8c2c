"""Move a model between the halves: ``python scripts/convert_checkpoint.py SRC --out RUN_DIR [--to legacy]``.

The command is ``cli/convert_checkpoint.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.convert_checkpoint import command  # noqa: E402

command()
