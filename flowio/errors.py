"""User-facing errors and the command-line wrapper every script uses.

A ``UserError`` is something the user caused and can fix (a missing folder, a wrong option, an output
folder of another run). Scripts run their ``main`` through ``run_cli``, which turns it into one line on
stderr and exit status 2, with no traceback. Anything else is a bug and keeps its traceback.
"""

import sys


class UserError(Exception):
    """An error the user can fix; its message is one line naming the thing and what to do."""


def run_cli(main, argv=None):
    """Run ``main(argv)`` and exit: 0 on success, 2 with a one-line message on a UserError, 130 on Ctrl-C."""
    prog = sys.argv[0].rsplit("/", 1)[-1]
    try:
        code = main(argv)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
