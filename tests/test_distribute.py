"""Multi-worker training: two train.py workers on 127.0.0.1 under MultiWorkerMirroredStrategy (TF_CONFIG), and
what happens when one of them dies or never starts.

Every process here is bounded by a timeout and SIGKILLed by PID: a worker waiting for a peer ignores SIGTERM.
"""

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest

from helpers import QUIET_TF, REPO, free_ports, train_args, train_run

TIMEOUT = 300


def h5_arrays(path):
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def keras_arrays(path):
    """The weights in a .keras file (its model.weights.h5), by their path in it."""
    with zipfile.ZipFile(path) as archive:
        return h5_arrays(io.BytesIO(archive.read("model.weights.h5")))


@pytest.mark.slow
def test_two_workers_train_one_run_with_identical_weights_and_one_process_steps(tiny, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    procs = []
    for index in range(2):
        env = {**os.environ, **QUIET_TF,
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        args = train_args("modern", tiny[1], tmp_path / "runs" / "run", "--model", "lenet5", "--worker-dir",
                          tmp_path / f"worker{index}", epochs=1)
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
    assert ours.keys() == theirs.keys() and len(ours) == 10  # lenet5's 5 kernels and 5 biases
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert json.loads((worker / "run.json").read_text())["epochs"] == run["epochs"]
    assert not (worker / "best.h5").exists()  # Keras's callbacks save on the chief only

    # parity (issue 26, C): lenet5 has no BN, so a step of the two workers, each on its half of the global batch,
    # is one process's step on the whole batch: weights, training loss and validation loss after the epoch's 9
    proc = train_run("modern", tiny[1], tmp_path / "one-process", "--model", "lenet5", epochs=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    alone = json.loads((tmp_path / "one-process" / "run.json").read_text())["epochs"][0]
    ours, one = keras_arrays(chief / "last.keras"), keras_arrays(tmp_path / "one-process" / "last.keras")
    assert ours.keys() == one.keys() and len(ours) > 10  # the weights and the optimizer's state
    difference = max(float(np.max(np.abs(ours[k] - one[k]))) for k in ours)
    gaps = {k: abs(run["epochs"][0][k] - alone[k]) for k in ("loss", "val_loss")}
    print(f"two workers vs one process after {alone['step']} steps: weights within {difference:.1e}, loss"
          f" {gaps['loss']:.1e}, val_loss {gaps['val_loss']:.1e}")
    assert difference < 1e-4 and alone["step"] == run["epochs"][0]["step"]
    assert max(gaps.values()) < 1e-4, (run["epochs"], alone)


def test_legacy_with_tf_config_is_refused(tiny, tmp_path):
    env = {**os.environ, **QUIET_TF, "TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                              "task": {"type": "worker", "index": 0}})}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"),
                           *map(str, train_args("legacy", tiny[1], tmp_path / "run"))],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "train.py: error: TF_CONFIG names no ps job: legacy trains on a cluster with parameter servers (slim's"
        " --num_ps_tasks), and workers alone (MultiWorkerMirroredStrategy) are the modern half's; add a ps job, or"
        " unset TF_CONFIG to train on one machine"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("task, message", [
    ({"type": "worker", "index": 5}, "The `task_id` 5 exceeds the maximum id of worker."),
    ({"type": "evaluator", "index": 0}, "task type 'evaluator': train.py is a chief or a worker of the cluster's (an"
                                        " evaluator or a parameter server is not)"),
], ids=["index", "type"])
def test_a_task_that_is_not_in_the_cluster_is_refused(task, message, tiny, tmp_path):
    env = {**os.environ, **QUIET_TF, "TF_CONFIG": json.dumps({"cluster": cluster_of(2), "task": task})}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"),
                           *map(str, train_args("modern", tiny[1], tmp_path / "run", "--model", "lenet5"))],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert (proc.returncode, proc.stderr.strip().splitlines()) == (2, [f"train.py: error: TF_CONFIG: {message}"])
    assert not (tmp_path / "run").exists()


# --- a dead worker (issue 26's part D, synchronous modes) ---------------------------------------------------

ERROR = ("Collective ops is aborted by: ... The error could be from a previous operation. [[{{node while/"
         "CollectiveReduceV2}}]] ... /job:worker/replica:0/task:1 ... /job:worker/replica:0/task:0 ...")


def test_a_tensorflow_error_names_the_peers_of_tf_config_it_mentions():
    from core import cluster
    listening = socket.create_server(("127.0.0.1", 0))
    alive, (dead, dead_ps) = f"127.0.0.1:{listening.getsockname()[1]}", (f"127.0.0.1:{p}" for p in free_ports(2))
    tf_config = {"cluster": {"chief": [alive], "worker": [dead, alive]}, "task": {"type": "worker", "index": 0}}
    with listening:
        assert cluster.lost(ERROR, tf_config) == f"worker 1 ({alive})"  # not this task's own device
        assert cluster.lost(ERROR.replace("task:1", "task:7"), tf_config) == ""  # no such task in TF_CONFIG
        assert cluster.lost("/job:localhost/replica:0/task:0 failed", tf_config) == ""
        assert cluster.unreachable(tf_config) == ""  # the chief and worker 1 listen
        tf_config["task"] = {"type": "chief", "index": 0}
        assert cluster.lost(ERROR, tf_config) == f"worker 1 ({alive}) and worker 0 ({dead})"
        assert cluster.unreachable(tf_config) == f"worker 0 ({dead})"
        assert cluster.lost(ERROR, {}) == ""  # an explicit empty TF_CONFIG is not the environment's
        # a parameter-server cluster: with prefer="ps", a dead ps alone (the workers that stopped on it aside)
        tf_config["cluster"]["ps"] = [dead_ps]
        assert cluster.unreachable(tf_config) == f"worker 0 ({dead}) and ps 0 ({dead_ps})"
        assert cluster.unreachable(tf_config, prefer="ps") == f"ps 0 ({dead_ps})"
        tf_config["cluster"]["ps"] = [alive]
        assert cluster.unreachable(tf_config, prefer="ps") == f"worker 0 ({dead})"

FAULT_EPOCHS = 3


def start_worker(index, cluster, records, folder, *extra):
    """One lenet5 worker of ``cluster`` (no QUIET_TF: what a user's shell gives, train.py's own log level)."""
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    args = train_args("modern", records, folder / "run", "--model", "lenet5", "--worker-dir", folder / f"worker{index}",
                      *extra, epochs=FAULT_EPOCHS)
    return subprocess.Popen([sys.executable, str(REPO / "scripts" / "train.py"), *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(procs):
    """``[(return code, stderr)]`` of ``procs``, each waited for at most TIMEOUT (then SIGKILLed)."""
    results = []
    for proc in procs:
        try:
            results.append((proc.wait(timeout=TIMEOUT), proc.stderr.read()))
        except subprocess.TimeoutExpired:
            proc.kill()
            results.append(("timeout", proc.stderr.read()))
    return results


def cluster_of(count):
    return {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}


def train_cluster(records, folder):
    """Both workers from the start (or from the chief's backup) to the end; asserts they succeed."""
    cluster = cluster_of(2)
    for code, err in finish([start_worker(i, cluster, records, folder) for i in range(2)]):
        assert code == 0, err[-3000:]


@pytest.fixture(scope="module")
def uninterrupted(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    train_cluster(tiny[1], folder)
    return folder / "run"


@pytest.mark.slow
@pytest.mark.parametrize("killed", [1, 0], ids=["worker", "chief"])
def test_a_killed_worker_stops_its_peer_with_one_line_and_the_restarted_cluster_ends_as_an_uninterrupted_run(
        killed, uninterrupted, tiny, tmp_path):
    cluster = cluster_of(2)
    procs = [start_worker(i, cluster, tiny[1], tmp_path) for i in range(2)]
    run_json = tmp_path / "run" / "run.json"
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and not (run_json.exists() and json.loads(run_json.read_text())["epochs"]):
        time.sleep(0.2)  # the first epoch ends: the kill falls in the second, after its backups began
    time.sleep(0.5)
    procs[killed].kill()
    killed_at = time.time()
    survivor = 1 - killed
    (code, err), = finish([procs[survivor]])
    took = time.time() - killed_at
    procs[killed].wait()
    assert code == 2 and took < 60, (code, took, err[-3000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-3000:]
    named = f"train.py: error: worker {killed} ({cluster['worker'][killed]}) stopped answering"
    assert lines[0].startswith(named), lines
    assert ("start every worker again with the same command (without --fresh): the run resumes from the chief's last"
            " backup") in lines[0]
    killed_run = json.loads(run_json.read_text())
    assert killed_run["state"] == "running" and len(killed_run["epochs"]) < FAULT_EPOCHS

    train_cluster(tiny[1], tmp_path)  # the same two commands again
    resumed, reference = json.loads(run_json.read_text()), json.loads((uninterrupted / "run.json").read_text())
    assert resumed["state"] == "complete" and resumed["resumed_from_steps"], resumed
    # an epoch the restart went back into has its training metrics from the steps run again only (Keras resets
    # them at an epoch's start; tests/test_faults.py): steps and validation, bit for bit, in every epoch
    for key in ("epoch", "step", "val_loss", "val_accuracy"):
        assert [e[key] for e in resumed["epochs"]] == [e[key] for e in reference["epochs"]], key
    ours, theirs = h5_arrays(tmp_path / "run" / "final.h5"), h5_arrays(uninterrupted / "final.h5")
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.slow
@pytest.mark.parametrize("started", [0, 1], ids=["chief-alone", "worker-alone"])
def test_a_worker_whose_peer_never_starts_names_it_and_stops(started, tiny, tmp_path):
    cluster = cluster_of(2)
    missing = 1 - started
    began = time.time()
    (code, err), = finish([start_worker(started, cluster, tiny[1], tmp_path, "--peer-timeout", 5)])
    took = time.time() - began
    assert code == 2 and took < 60, (code, took, err[-3000:])
    assert err.strip().splitlines() == [
        f"train.py: error: TF_CONFIG: worker {missing} ({cluster['worker'][missing]}) did not join within 5 s; start"
        " it with the same command and its own task in TF_CONFIG, then this one again"]
    assert not (tmp_path / "run").exists()
