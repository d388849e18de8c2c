"""User-facing errors and the command-line wrapper every script uses.

A ``UserError`` is something the user caused and can fix (a missing folder, a wrong option, an output
folder of another run). Scripts run their ``main`` through ``run_cli``, which turns it into one line on
stderr and exit status 2, with no traceback. Anything else is a bug and keeps its traceback.
"""

import errno
import re
import sys


class UserError(Exception):
    """An error the user can fix; its message is one line naming the thing and what to do."""


DISK_FULL = "No space left on device"


def disk_full(err):
    """Whether ``err`` says the disk (or the user's quota) is full: an OSError, or a TensorFlow error that only
    carries the C library's words (a Saver's ``ResourceExhaustedError``, a writer's ``UnknownError``)."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return DISK_FULL in str(err) or "Disk quota exceeded" in str(err)


def _where(err):
    """The file a disk-full error names, when it names one."""
    name = getattr(err, "filename", None)
    if name:
        return str(name)
    for line in str(err).splitlines():
        if DISK_FULL in line and ";" in line:  # TensorFlow: "<file>.tempstate123; No space left on device"
            return re.sub(r"\.tempstate\d+$", "", line.split(";")[0].strip())
    return None


def run_cli(main, argv=None):
    """Run ``main(argv)`` and exit: 0 on success, 2 with a one-line message on a UserError or a full disk, 130 on
    Ctrl-C. What every script writes goes to temporary names first, so a full disk leaves the last complete
    output (and checkpoint) in place, and the same command resumes once there is room."""
    prog = sys.argv[0].rsplit("/", 1)[-1]
    try:
        code = main(argv)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 -- only a full disk is the user's to fix; anything else re-raises
        if not disk_full(err):
            raise
        where = _where(err)
        print(f"{prog}: error: no space left on the device{f' writing {where}' if where else ''}; free some space"
              " and run the same command again (the last complete output and checkpoint are kept)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
