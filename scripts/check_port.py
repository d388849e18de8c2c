"""Check your own port against its TF1 original: ``python scripts/check_port.py LEGACY MODERN``.

The command is ``cli/check_port.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.check_port import command  # noqa: E402

command()
