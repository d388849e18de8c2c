"""Shared fixtures (nothing else: helpers and constants are tests/helpers.py's): tiny real data (3 classes of
32x32 images) and one tiny trained run per half (keras3's on each backend), made once per test session.
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

from core import kernels  # noqa: E402

# train.py's choice of CPU kernels (core/kernels.py), for this process and every one the tests start, so the suite
# trains on oneDNN where TensorFlow would leave Eigen's kernels (an AVX2 CPU); set here, it is the caller's own
# variable to the commands, which then say nothing of it on stderr
_KERNELS = kernels.for_this_process("train")
if _KERNELS.onednn is not None:
    os.environ.setdefault(kernels.VARIABLE, "1" if _KERNELS.onednn else "0")

import pytest  # noqa: E402

from helpers import (CLASSES, IMPLS, KERAS3_BACKENDS, QUIET_TF, REPO, TINY_MODEL, run_script, save, shape_image,
                     train_args)


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


def shared(tmp_path_factory, name, make):
    """A copy of what ``make(folder)`` writes once per test session: ``make test``'s two xdist workers each have a
    session, and the first to ask makes it in the test session's shared folder (under a lock); each worker gets
    its own copy, free to change it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    session = tmp_path_factory.getbasetemp()
    folder = (session.parent if worker else session) / name
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").exists():
            make(folder / "runs")
            (folder / "done").touch()
    root = tmp_path_factory.mktemp(name) / "runs"
    shutil.copytree(folder / "runs", root, symlinks=True)
    return root


@pytest.fixture(scope="session")
def runs(tiny, tmp_path_factory):
    """``{impl: run dir}``, each trained once for 2 epochs and exported; ``runs/latest`` ends at modern's."""
    root = shared(tmp_path_factory, "shared-runs", lambda folder: train_shared_runs(tiny[1], folder))
    return {impl: root / f"{impl}-run" for impl in IMPLS}


@pytest.fixture(scope="session")
def keras3_runs(tiny, tmp_path_factory):
    """``{backend: run dir}``: the tiny run of the keras3 half on each Keras backend (both trained at once, a core
    each), exported."""
    def train(folder):
        procs = [subprocess.Popen([sys.executable, str(REPO / "scripts" / "train.py"),
                                   *map(str, train_args("keras3", tiny[1], folder / backend, "--keras-backend",
                                                        backend, export=True))],
                                  env={**os.environ, **QUIET_TF, "TF_DETERMINISTIC_OPS": "1"},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for backend in KERAS3_BACKENDS]
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=900)
            assert proc.returncode == 0 and f"train: keras3 {TINY_MODEL} -> " in stdout, stderr[-3000:]
    root = shared(tmp_path_factory, "keras3-runs", train)
    return {backend: root / backend for backend in KERAS3_BACKENDS}


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
