"""The file conventions every writer of the project follows, in one place: flowio's output folder and the run
directory both use them.

* What is being written has a name starting with ``TEMPORARY`` (``.tmp-``) beside where it goes, and is renamed
  into place once complete (``atomic``), so a reader sees the old file or the new one, never half of one; a file
  or folder so named left by a killed writer is garbage (``core.run_dir.remove_leftovers`` deletes them).
* JSON is written one way (``write_json``: sorted keys, two-space indent, UTF-8, a final newline).
* ``labels.txt`` holds ``id:name`` lines (``write_labels``); ``read_labels`` also takes a plain list of names, one
  a line, as ``convert_checkpoint.py --labels`` accepts.
* A folder that one process writes at a time is held with ``locked`` (``fcntl.flock``: the kernel releases it when
  the process dies, so a killed writer never leaves a stale lock).
"""

import contextlib
import fcntl
import json
import os
import shutil

from core.errors import UserError

TEMPORARY = ".tmp-"


def temporary_name(path):
    """The name ``path`` is written under until it is complete: ``.tmp-<pid>-<name>`` in the same folder (the
    pid keeps two writers of one path apart; the name's suffix still tells Keras or TensorFlow the format)."""
    folder, name = os.path.split(os.fspath(path))
    return os.path.join(folder, f"{TEMPORARY}{os.getpid()}-{name}")


def remove(path):
    """Delete a file, a link or a folder at ``path``, if there is one."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def alive(pid):
    """Whether a process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def remove_stale(path):
    """Delete what killed writers of ``path`` left: ``.tmp-<pid>-<name>`` beside it whose process is gone."""
    folder, name = os.path.split(os.fspath(path))
    suffix = f"-{name}"
    for entry in os.listdir(folder or "."):
        pid = entry[len(TEMPORARY):-len(suffix)]
        if entry.startswith(TEMPORARY) and entry.endswith(suffix) and pid.isdigit() and not alive(int(pid)):
            remove(os.path.join(folder, entry))


@contextlib.contextmanager
def atomic(path):
    """Yield the temporary name to write ``path`` under (a file, a folder or a link); when the block ends it
    replaces ``path`` in one rename, and if the block fails it is deleted. A folder replaces only an absent or
    empty folder (``os.replace``'s rule). A killed writer's leftover of the same path goes first."""
    remove_stale(path)
    tmp = temporary_name(path)
    remove(tmp)  # a leftover of a killed process that had this pid
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        remove(tmp)
        raise


def write_json(path, obj):
    """``obj`` as JSON at ``path``, atomically."""
    with atomic(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def write_labels(path, labels):
    """``labels.txt``: ``id:name`` a line, atomically."""
    with atomic(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(f"{i}:{name}\n" for i, name in enumerate(labels))


def read_labels(path):
    """Class names by id from ``path``: ``id:name`` lines (in any order), or plain names one a line; blank lines
    are skipped. Raises OSError as ``open`` does."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    if lines and all(":" in line and line.split(":", 1)[0].isdigit() for line in lines):
        return [name for _, name in sorted((int(i), name) for i, name in (line.split(":", 1) for line in lines))]
    return lines


@contextlib.contextmanager
def locked(path, busy):
    """Hold the lock file ``path`` for the block (yielding its file descriptor, which a child process may
    inherit); when another process holds it, a UserError saying ``busy``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(busy) from None
        yield fd
    finally:
        os.close(fd)
