"""Check (or fix) the line anchors of the docs: ``python scripts/doc_anchors.py [--fix] [DOC ...]``.

The command is ``cli/doc_anchors.py``'s (``--help`` says everything); this file runs it from a checkout.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, not scripts/

from cli.doc_anchors import command  # noqa: E402

command()
