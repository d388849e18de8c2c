"""Multi-worker training: two train.py workers on 127.0.0.1 under MultiWorkerMirroredStrategy (TF_CONFIG).

Workers waiting for a missing peer hang and ignore SIGTERM (docs/DESIGN.md §8): every process here is bounded by a
timeout and SIGKILLed by PID.
"""

import json
import os
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest

from helpers import QUIET_TF, REPO, train_args

TIMEOUT = 300


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def h5_arrays(path):
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.slow
def test_two_workers_train_one_run_with_identical_weights(tiny, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    procs = []
    for index in range(2):
        env = {**os.environ, **QUIET_TF,
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        args = train_args("modern", tiny[1], tmp_path / "runs" / "run", "--worker-dir", tmp_path / f"worker{index}",
                          epochs=1)
        procs.append(subprocess.Popen([sys.executable, str(REPO / "scripts" / "train.py"), *map(str, args)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [proc.communicate(timeout=TIMEOUT) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]

    chief, worker = tmp_path / "runs" / "run", tmp_path / "worker1"
    assert not (tmp_path / "worker0").exists()  # the chief (worker 0) writes --run-dir, not --worker-dir
    run = json.loads((chief / "run.json").read_text())
    assert run["state"] == "complete" and len(run["epochs"]) == 1
    assert run["distribute"] == {"strategy": "MultiWorkerMirroredStrategy", "replicas": 2}
    assert run["epochs"][0]["step"] == 36 // 4  # the batch size is the global one: 9 steps of 4 images
    assert os.readlink(tmp_path / "runs" / "latest") == "run"
    assert not [p for p in chief.rglob("*") if "workertemp" in p.name]
    assert not (chief / "backup").exists()
    # the worker's scratch copy holds the same weights, bit for bit
    ours, theirs = h5_arrays(chief / "final.h5"), h5_arrays(worker / "final.h5")
    assert ours.keys() == theirs.keys() and len(ours) > 100
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert json.loads((worker / "run.json").read_text())["epochs"] == run["epochs"]
    assert not (worker / "best.h5").exists()  # Keras's callbacks save on the chief only


def test_legacy_with_tf_config_is_refused(tiny, tmp_path):
    env = {**os.environ, **QUIET_TF, "TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                              "task": {"type": "worker", "index": 0}})}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"),
                           *map(str, train_args("legacy", tiny[1], tmp_path / "run"))],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "train.py: error: TF_CONFIG is set, and multi-worker training is the modern half's (tf.distribute);"
        " unset TF_CONFIG to train legacy on one machine"]
    assert not (tmp_path / "run").exists()
