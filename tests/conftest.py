"""Shared fixtures (nothing else: helpers and constants are tests/helpers.py's): tiny real data (3 classes of
32x32 images) and one tiny trained run per half, made once per test session.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import time

# as every command does (cli/__init__.py): TensorFlow loads tf_keras at its import, not Keras 3 with scikit-learn,
# matplotlib, SciPy and JAX (2 s of each test process's start); the subprocesses inherit it
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pytest  # noqa: E402

from helpers import CLASSES, IMPLS, QUIET_TF, REPO, TINY_MODEL, run_script, save, shape_image, train_args


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``(data dir, records dir)``: 16 images per class, a quarter of them held out."""
    base = tmp_path_factory.mktemp("tiny")
    for c, kind in enumerate(CLASSES):
        for i in range(16):
            save(base / "data" / kind / f"{i:02d}.png", shape_image(kind, 100 * c + i), "PNG")
    proc = run_script("flowio.py", base / "data", "--out", base / "records", "--val-fraction", 0.25, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return base / "data", base / "records"


@pytest.fixture(scope="session")
def runs(tiny, tmp_path_factory):
    """``{impl: run dir}``, each trained once for 2 epochs and exported; ``runs/latest`` ends at modern's.

    ``make test``'s two xdist workers each have a session: the first to ask trains the runs into the test session's
    shared folder (under a lock), and each worker gets its own copy, free to change it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    session = tmp_path_factory.getbasetemp()
    shared = (session.parent if worker else session) / "shared-runs"
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "done").exists():
            train_shared_runs(tiny[1], shared / "runs")
            (shared / "done").touch()
    root = tmp_path_factory.mktemp("train") / "runs"
    shutil.copytree(shared / "runs", root, symlinks=True)
    return {impl: root / f"{impl}-run" for impl in IMPLS}


def train_shared_runs(records, root):
    """Both halves' runs at once (most of each is one core's: importing TensorFlow, tracing, converting the
    exports), modern's started once legacy's has marked ``runs/latest``, so that the link ends at modern's."""
    # deterministic ops: tests/test_faults.py's killed runs must end exactly as these
    env = {**os.environ, **QUIET_TF, "TF_DETERMINISTIC_OPS": "1"}
    procs = {}
    for impl in IMPLS:
        procs[impl] = subprocess.Popen([sys.executable, str(REPO / "scripts" / "train.py"),
                                        *map(str, train_args(impl, records, root / f"{impl}-run", export=True))],
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while latest(root) != f"{impl}-run":
            assert procs[impl].poll() is None and time.time() < deadline, procs[impl].communicate()[1][-3000:]
            time.sleep(0.1)
    for impl, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr[-3000:]
        assert f"train: {impl} {TINY_MODEL} -> " in stdout


def latest(root):
    link = root / "latest"
    return os.readlink(link) if os.path.islink(link) else None
