"""The README's table of models, from the registry: ``python scripts/model_table.py [--write | --check] [README]``.

The command is ``cli/model_table.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.model_table import command  # noqa: E402

command()
