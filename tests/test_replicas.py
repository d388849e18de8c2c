"""Parameter servers as research/slim deployed them (issue 26, part A.2): a ps task and two legacy train.py workers
on 127.0.0.1 (TF_CONFIG), synchronous (SyncReplicasOptimizer) and asynchronous, and what a dead task does to them:
a dead or missing worker stops the synchronous cluster, the asynchronous one trains on and takes it back, a dead
ps stops every worker, and the same commands resume the run. Then their TF2 form (part B): modern's
ParameterServerStrategy, a chief coordinating two workers and a ps, which goes on without a dead worker, takes it
back, stops without its ps, and resumes.

The synchronous cluster is compared with one process training on the same global batches (tf_slim's graph in a
plain Session, where the cluster's steps go through ``SyncReplicasOptimizer``'s gradient accumulators on a ps).
Every process is bounded by a timeout and SIGKILLed at the end: a ps task serves until it is stopped.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import (CLONE_LR, QUIET_TF, REPO, best_cross_entropy, clone_run, free_ports, session_steps, train_args,
                     train_run)

TIMEOUT = 300
EPOCHS = 4
PEER_TIMEOUT = 10  # --peer-timeout: how long a synchronous step waits for a dead worker's gradient
# --epochs of a cluster whose chief trains on while a killed worker starts again: asked for the epochs the run
# ends with, the asynchronous legacy chief (0.2 s an epoch) was done before the worker was back (not within 19 s of
# its restart, in one CI run on a loaded machine); stopped, the run resumes with the epochs it ends with (a resumed
# run takes the new --epochs)
UNREACHED = 10_000


def cluster_of(workers):
    ports = free_ports(1 + workers)
    return {"ps": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{p}" for p in ports[1:]]}


def start(job, index, cluster, args):
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": job, "index": index}})}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user's shell gives: train.py's own log level
    return subprocess.Popen([sys.executable, str(REPO / "scripts" / "train.py"), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Cluster:
    """One ps and two workers of ``args``, the first ``started`` of them started (worker i's scratch run in
    ``folder / worker<i>``)."""

    def __init__(self, folder, args, started=2):
        self.cluster = cluster_of(2)
        self.ps = start("ps", 0, self.cluster, args)
        self.workers = [start("worker", i, self.cluster, [*args, "--worker-dir", folder / f"worker{i}"])
                        for i in range(started)]

    def name(self, job, index):
        return f"{job} {index} ({self.cluster[job][index]})"

    def finish(self, procs=None):
        """``[(return code, stdout, stderr)]`` of ``procs`` (the workers), each waited for at most TIMEOUT."""
        results = []
        for proc in self.workers if procs is None else procs:
            try:
                out, err = proc.communicate(timeout=TIMEOUT)
                results.append((proc.returncode, out, err))
            except subprocess.TimeoutExpired:
                proc.kill()
                results.append(("timeout", *proc.communicate()))
        return results

    def stop(self):
        for proc in [self.ps, *self.workers]:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def lost(task):
    """The one line of a worker whose peer ``task`` died."""
    return (f"train.py: error: {task} is not answering (it died, or never started); start every task again (the"
            f" parameter servers too) with the same command (without --fresh): the run resumes from the chief's last"
            f" checkpoint")


def train(folder, args):
    """The cluster from the start (or the chief's last checkpoint) to the end; asserts every worker succeeds."""
    cluster = Cluster(folder, args)
    try:
        for code, out, err in cluster.finish():
            assert code == 0, err[-3000:]
    finally:
        cluster.stop()


def weights(run_dir, kind="last"):
    import tensorflow as tf
    reader = tf.train.load_checkpoint(str(run_dir / "ckpt" / kind))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def when_recorded(run_json, epochs, proc):
    """Wait until ``run_json`` records ``epochs`` epochs (or ``proc`` ends)."""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        if run_json.exists() and len(json.loads(run_json.read_text())["epochs"]) >= epochs:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{run_json} never recorded {epochs} epochs: {proc.communicate()[1][-3000:]}")


def sync_args(records, run_dir, epochs=EPOCHS):
    # slim's recipe (rmsprop, moving averages, label smoothing), which the chief's synchronous step updates
    return train_args("legacy", records, run_dir, "--model", "lenet5", "--peer-timeout", PEER_TIMEOUT,
                      epochs=epochs)


@pytest.fixture(scope="module")
def one_process(tiny, tmp_path_factory):
    """The same training in one process: ``(run.json after its first epoch, run.json at the end, last weights)``."""
    run_dir = tmp_path_factory.mktemp("one-process") / "run"
    records = {}
    for epochs in (1, EPOCHS):  # the second run continues the first
        proc = train_run("legacy", tiny[1], run_dir, "--model", "lenet5", epochs=epochs)
        assert proc.returncode == 0, proc.stderr[-3000:]
        records[epochs] = json.loads((run_dir / "run.json").read_text())
    return records[1], records[EPOCHS], weights(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("killed", [1, 0], ids=["worker", "chief"])
def test_synchronous_replicas_step_as_one_process_and_a_dead_worker_stops_the_other_until_a_restart(
        killed, one_process, tiny, tmp_path):
    first, reference, reference_weights = one_process
    run_dir = tmp_path / "run"
    args = [*sync_args(tiny[1], run_dir), "--sync-replicas", "--worker-replicas", 2, "--num-ps-tasks", 1]
    cluster = Cluster(tmp_path, args)
    try:
        when_recorded(run_dir / "run.json", 1, cluster.workers[0])
        cluster.workers[killed].kill()
        killed_at = time.time()
        (code, out, err), = cluster.finish([cluster.workers[1 - killed]])
        took = time.time() - killed_at
    finally:
        cluster.stop()
    print(f"worker {killed} killed: worker {1 - killed} stopped {took:.1f} s later")
    assert code == 2 and took < 60, (code, took, err[-3000:])
    assert err.strip().splitlines() == [lost(cluster.name("worker", killed))]
    killed_run = json.loads((run_dir / "run.json").read_text())
    assert killed_run["state"] == "running" and len(killed_run["epochs"]) < EPOCHS
    assert killed_run["distribute"] == {"strategy": "SyncReplicasOptimizer", "replicas": 2, "ps_tasks": 1}
    # parity: the first epoch's steps on two workers are one process's on the global batches
    epoch = killed_run["epochs"][0]
    assert epoch["step"] == first["epochs"][0]["step"] == 36 // 4
    assert abs(epoch["val_loss"] - first["epochs"][0]["val_loss"]) < 1e-4

    train(tmp_path, args)  # the same three commands again
    resumed = json.loads((run_dir / "run.json").read_text())
    assert resumed["state"] == "complete" and resumed["resumed_from_steps"], resumed
    assert [e["step"] for e in resumed["epochs"]] == [e["step"] for e in reference["epochs"]]
    # the loss each worker records is its share's: their mean is the global batch's
    worker1 = json.loads((tmp_path / "worker1" / "run.json").read_text())
    shares = [resumed["epochs"][-1]["loss"], worker1["epochs"][-1]["loss"]]
    assert abs(np.mean(shares) - reference["epochs"][-1]["loss"]) < 1e-4
    ours = weights(run_dir)
    assert ours.keys() == reference_weights.keys() and len(ours) > 10
    difference = max(float(np.max(np.abs(ours[k] - reference_weights[k]))) for k in ours)
    print(f"resumed cluster vs one process after {resumed['epochs'][-1]['step']} steps: weights within"
          f" {difference:.1e}")
    assert difference < 1e-4


@pytest.mark.slow
def test_synchronous_replicas_with_bn_normalise_each_share_and_update_the_statistics_once_per_worker(tiny, tmp_path):
    """Issue 26, C, on a BN net: a synchronous step of two workers is the mean of one step on each worker's share
    (each normalises its own share), and the moving statistics on the ps take one update per worker, in the order
    they arrive (neither model_deploy's first clone alone nor Keras's mean of the replicas)."""
    from core.run_dir import Run
    import flowio
    run_dir, initial = tmp_path / "run", {"checkpoint": str(tmp_path / "initial" / "model.ckpt")}
    # the starting weights, written by a plain tf_slim graph; the cluster starts from them (--init-from)
    session_steps(clone_run("legacy", "resnet18", 36), {"initial": (np.zeros([2, 32, 32, 3], np.float32),
                                                                    np.zeros([2], np.int64), 1)}, initial)
    # one global batch of 36 images (the whole training split): one synchronous step, of 18 images a worker
    args = ["--impl", "legacy", "--model", "resnet18", "--data", tiny[1], "--image-size", 32, "--batch-size", 36,
            "--epochs", 1, "--optimizer", "sgd", "--lr", CLONE_LR, "--learning-rate-decay-type", "fixed",
            "--bn-decay", 0.9, "--bn-statistics", "moving", "--no-flip", "--sync-replicas", "--init-from",
            initial["checkpoint"], "--run-dir", run_dir, "--quiet", "--no-export", "--peer-timeout", PEER_TIMEOUT]
    train(tmp_path, args)
    run = Run.read(str(run_dir))
    assert run.epochs[0]["step"] == 1 and run.init_from["restored"] == len(initial["values"]), run.init_from
    # the batch the workers split, as legacy's input reads it, and one process's step on each half
    images, labels = next(iter(flowio.dataset(tiny[1], "train", 32, 36, training=True, flip=False, seed=run.hyper.seed,
                                              repeat=True, drop_remainder=True, recipe=run.preprocessing)))
    images, labels = images.numpy(), labels.numpy()
    steps = session_steps(run, {"first": (images[:18], labels[:18], 1), "second": (images[18:], labels[18:], 1)},
                          initial)
    ours, start = weights(run_dir), initial["values"]
    statistics = sorted(k for k in start if "moving_" in k)
    trained = sorted(k for k in start if "moving_" not in k)
    assert len(statistics) == 34 and len(trained) > 60 and set(start) <= set(ours)

    def off(expected, keys):  # the largest difference, over the largest change from the start (as test_clones.py)
        return (max(np.abs(ours[k] - expected(k)).max() for k in keys)
                / max(np.abs(expected(k) - start[k]).max() for k in keys))

    shares = lambda k: (steps["first"][k] + steps["second"][k]) / 2  # noqa: E731
    assert off(shares, trained) < 1e-4
    # each worker's update reads the statistic, then subtracts (1 - d) * (m - its share's): the ps serialises the
    # subtractions, not the reads. In turn, share a then b: d * (d * m + (1 - d) * a) + (1 - d) * b = d * first +
    # second - d * m (or b then a); both read before either subtracted: m - (m - first) - (m - second)
    d = 0.9
    outcomes = {"a, b": lambda k: d * steps["first"][k] + steps["second"][k] - d * start[k],
                "b, a": lambda k: d * steps["second"][k] + steps["first"][k] - d * start[k],
                "overlapping": lambda k: steps["first"][k] + steps["second"][k] - start[k]}
    nearest = {k: min((np.abs(ours[k] - outcome(k)).max(), name) for name, outcome in outcomes.items())
               for k in statistics}
    in_turn = max(gap for gap, _ in nearest.values()) / max(np.abs(ours[k] - start[k]).max() for k in statistics)
    seen = {name: sum(1 for _, n in nearest.values() if n == name) for name in outcomes}
    print(f"SyncReplicas with BN: weights within {off(shares, trained):.1e} of the mean of the shares' steps,"
          f" moving statistics within {in_turn:.1e} of one update per worker ({seen})")
    assert in_turn < 1e-4
    assert off(shares, statistics) > 1e-2 and off(lambda k: steps["first"][k], statistics) > 1e-2


@pytest.mark.slow
def test_a_synchronous_worker_that_never_starts_stops_the_chief(tiny, tmp_path):
    run_dir = tmp_path / "run"
    args = [*train_args("legacy", tiny[1], run_dir, "--model", "lenet5", "--peer-timeout", 5, epochs=1),
            "--sync-replicas"]
    started = time.time()
    cluster = Cluster(tmp_path, args, started=1)
    try:
        (code, out, err), = cluster.finish()
    finally:
        cluster.stop()
    took = time.time() - started
    print(f"worker 1 never started: the chief stopped {took:.1f} s after it started")
    assert (code, err.strip().splitlines()) == (2, [lost(cluster.name("worker", 1))]), err[-3000:]
    assert took < 60 and json.loads((run_dir / "run.json").read_text())["epochs"] == []


def async_args(records, run_dir, epochs):
    # no moving averages: asynchronous workers would train on the averages the chief swaps in to validate; batches
    # of 12, three steps an epoch: the chief trains on alone for long enough (0.2 s an epoch) to be rejoined
    return ["--impl", "legacy", "--model", "lenet5", "--data", records, "--image-size", 32, "--batch-size", 12,
            "--optimizer", "rmsprop", "--lr", 0.01, "--no-flip", "--epochs", epochs, "--save-every", 4, "--run-dir",
            run_dir, "--quiet", "--no-export", "--peer-timeout", PEER_TIMEOUT]


def recorded_epochs(run_json):
    return [e["epoch"] for e in json.loads(run_json.read_text())["epochs"]] if run_json.exists() else []


@pytest.mark.slow
def test_asynchronous_replicas_go_on_without_a_dead_worker_rejoin_it_and_stop_without_their_parameter_server(
        tiny, tmp_path):
    run_dir, epochs = tmp_path / "run", 80
    args = async_args(tiny[1], run_dir, UNREACHED)
    cluster = Cluster(tmp_path, args)
    try:
        when_recorded(run_dir / "run.json", 1, cluster.workers[0])
        cluster.workers[1].kill()
        cluster.workers[1].communicate()
        # the same command again: worker 1 rejoins at the start of the chief's epoch
        cluster.workers[1] = start("worker", 1, cluster.cluster, [*args, "--worker-dir", tmp_path / "worker1"])
        restarted_at = len(recorded_epochs(run_dir / "run.json"))
        deadline = time.time() + TIMEOUT
        while max(recorded_epochs(tmp_path / "worker1" / "run.json"), default=0) <= restarted_at + 1:
            assert time.time() < deadline and cluster.workers[0].poll() is None, cluster.finish()
            time.sleep(0.05)
        cluster.ps.kill()
        killed_at = time.time()
        (code, out, err), (code1, _, err1) = cluster.finish()
        took = time.time() - killed_at
    finally:
        cluster.stop()
    # not at the chief's last checkpoint (epoch 1), at the chief's epoch when it started
    rejoined = min(e for e in recorded_epochs(tmp_path / "worker1" / "run.json") if e > restarted_at)
    print(f"worker 1 restarted at the chief's epoch {restarted_at + 1}, rejoined at epoch {rejoined}; ps killed:"
          f" the workers stopped {took:.1f} s later")
    assert rejoined > restarted_at + 1
    said = [line for line in out.splitlines() if line.startswith(f"train: {cluster.name('worker', 1)}")]
    # the last two: a worker 1 whose server came up after the chief's first epoch end was lost and back already
    assert said[-2:] == [f"train: {cluster.name('worker', 1)} is not answering; training goes on without it",
                    f"train: {cluster.name('worker', 1)} is back"], out
    assert (code, code1) == (2, 2) and took < 60, (code, code1, took, err[-3000:], err1[-3000:])
    for lines in (err, err1):
        assert lines.strip().splitlines() == [lost(cluster.name("ps", 0))]
    stopped = json.loads((run_dir / "run.json").read_text())
    assert stopped["state"] == "running" and restarted_at < len(stopped["epochs"]) < UNREACHED
    assert stopped["distribute"] == {"strategy": "asynchronous", "replicas": 2, "ps_tasks": 1}

    # the three commands again, to the epochs the run ends with: it resumes from the chief's last checkpoint, and
    # trains long enough (at least 60 epochs, 12 s) for worker 1, started with it, to find it (it waits for the
    # chief, up to --peer-timeout, and the chief does not wait for it)
    epochs = max(epochs, len(stopped["epochs"]) + 60)
    train(tmp_path, async_args(tiny[1], run_dir, epochs))
    resumed = json.loads((run_dir / "run.json").read_text())
    assert resumed["state"] == "complete" and resumed["resumed_from_steps"][-1] >= stopped["epochs"][-2]["step"]
    losses = [e["loss"] for e in resumed["epochs"]]
    # it learns (in three runs by hand: the first ten epochs' mean 1.09, the last ten's 0.41 to 0.43); the steps
    # are not deterministic
    assert len(losses) == epochs and np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.3, losses


# --- modern: ParameterServerStrategy -----------------------------------------------------------------------

class Lines:
    """The lines a process prints on stdout, as they come (read by a thread)."""

    def __init__(self, proc):
        self.lines = []
        threading.Thread(target=lambda: self.lines.extend(proc.stdout), daemon=True).start()

    def wait(self, line, proc):
        """Wait until ``line`` has been printed (while ``proc`` runs); return when."""
        deadline = time.time() + TIMEOUT
        while line + "\n" not in self.lines:
            assert time.time() < deadline and proc.poll() is None, (line, self.lines, proc.poll())
            time.sleep(0.05)
        return time.time()


def cpu_seconds(proc):
    """User and system CPU time of ``proc`` so far (Linux's /proc)."""
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_parameter_server_strategy_goes_on_without_a_dead_worker_rejoins_it_and_stops_without_its_ps(tiny, tmp_path):
    run_dir, epochs = tmp_path / "run", 30
    ports = free_ports(4)
    cluster = {"ps": [f"127.0.0.1:{ports[0]}"], "chief": [f"127.0.0.1:{ports[1]}"],
               "worker": [f"127.0.0.1:{port}" for port in ports[2:]]}
    # no weight decay: the recorded val_loss is the cross-entropy alone, which the test computes again below
    def args(epochs):
        return ["--impl", "modern", "--model", "lenet5", "--data", tiny[1], "--image-size", 32, "--batch-size", 4,
                "--optimizer", "adam", "--opt-epsilon", 1e-8, "--lr", 0.001, "--learning-rate-decay-type", "fixed",
                "--weight-decay", 0, "--no-flip", "--epochs", epochs,
                "--run-dir", run_dir, "--quiet", "--no-export", "--peer-timeout", PEER_TIMEOUT]

    procs = {task: start(*task, cluster, args(UNREACHED))
             for task in [("ps", 0), ("worker", 0), ("worker", 1), ("chief", 0)]}
    name = lambda job, index: f"{job} {index} ({cluster[job][index]})"  # noqa: E731
    try:
        chief = procs["chief", 0]
        said = Lines(chief)
        when_recorded(run_dir / "run.json", 2, chief)
        procs["worker", 1].kill()
        killed_at = time.time()
        noticed = said.wait(f"train: {name('worker', 1)} is not answering; training goes on without it", chief)
        procs["worker", 1] = start("worker", 1, cluster, args(UNREACHED))  # the same command again
        said.wait(f"train: {name('worker', 1)} is back", chief)
        # the restarted worker runs steps again: CPU over six epochs, once the coordinator has sent it the
        # functions and its dataset (two epochs); the coordinator gives each step to whichever worker is free, so
        # its share varies (0.45 to 1.9 times worker 0's CPU in runs so far), and a worker given no step uses none
        # (0.00 s over 5 s, measured on a started worker no chief dispatched to)
        when_recorded(run_dir / "run.json", len(recorded_epochs(run_dir / "run.json")) + 2, chief)
        cpu = {task: cpu_seconds(procs[task]) for task in [("worker", 0), ("worker", 1)]}
        when_recorded(run_dir / "run.json", len(recorded_epochs(run_dir / "run.json")) + 6, chief)
        cpu = {task: cpu_seconds(procs[task]) - before for task, before in cpu.items()}
        procs["ps", 0].kill()
        ps_killed_at = time.time()
        chief.wait(timeout=TIMEOUT)
        took = time.time() - ps_killed_at
        err = chief.stderr.read()
        stopped = json.loads((run_dir / "run.json").read_text())

        # the ps and the chief again, to the epochs the run ends with; the workers never stopped
        epochs = max(epochs, len(stopped["epochs"]) + 10)
        procs["ps", 0] = start("ps", 0, cluster, args(epochs))
        chief = procs["chief", 0] = start("chief", 0, cluster, args(epochs))
        _, err2 = chief.communicate(timeout=TIMEOUT)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    print(f"worker 1 killed: the chief said so {noticed - killed_at:.1f} s later; restarted, it ran"
          f" {cpu['worker', 1]:.2f} s of CPU over 6 epochs (worker 0: {cpu['worker', 0]:.2f} s); ps killed: the chief"
          f" stopped {took:.1f} s later")
    assert cpu["worker", 1] > cpu["worker", 0] / 10, cpu
    assert chief.returncode == 0, err2[-3000:]
    assert err.strip().splitlines() == [
        f"train.py: error: {name('ps', 0)} stopped answering, and every step reads and updates the variables on the"
        f" parameter servers; start it again with the same command, then the chief (without --fresh): the run"
        f" resumes from the last epoch's backup"] and took < 60, (took, err[-3000:])
    assert stopped["state"] == "running" and 8 <= len(stopped["epochs"]) < UNREACHED
    assert stopped["distribute"] == {"strategy": "ParameterServerStrategy", "replicas": 1}

    resumed = json.loads((run_dir / "run.json").read_text())
    steps = [e["step"] for e in resumed["epochs"]]
    # from the last epoch's backup (the chief backs up at each epoch's end, after run.json)
    # 36 images, batches of 4: an epoch is 9 steps of any worker, two a call (steps_per_execution); the steps of a
    # call the killed worker had applied but not returned run again on another (the coordinator's retry), so an
    # epoch of the kill may count one or two more. The backup resumes at its epoch's end, 9 steps an epoch
    # (modern.train.backed_up_step), whatever the retries added to the optimizer's step
    assert resumed["state"] == "complete" and resumed["resumed_from_steps"][-1] in (
        9 * stopped["epochs"][-1]["epoch"], 9 * stopped["epochs"][-2]["epoch"]), resumed["resumed_from_steps"]
    assert steps[:2] == [9, 18] and all(9 <= b - a <= 11 for a, b in zip(steps, steps[1:])), steps
    losses = [e["loss"] for e in resumed["epochs"]]
    print(f"loss: the first ten epochs' mean {np.mean(losses[:10]):.3f}, the last ten's {np.mean(losses[-10:]):.3f}")
    # it learns: in seven runs the first ten epochs' mean loss was 1.01-1.08, the last ten's 0.41-0.84; a net
    # that does not learn stays at the uniform guess, ln 3 = 1.0986, in every epoch (Adam at 0.003 left it there in
    # one run of three, as in two of three seeds in one process); the steps are not deterministic
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.15, losses

    # every validation image counted once (Keras's exact evaluation, one worker on the whole split): best.h5's
    # cross-entropy on the validation split, computed here in one process, is the val_loss the chief recorded
    cross_entropy, examples = best_cross_entropy(run_dir, tiny[1])
    best = resumed["epochs"][resumed["best"]["epoch"] - 1]
    assert examples == 12 and abs(cross_entropy - best["val_loss"]) < 1e-4, (cross_entropy, best)


# --- what is refused, before a server starts -----------------------------------------------------------------

def test_slims_replica_flags_are_checked_against_tf_config():
    from core.cluster import Replicas, replica_topology
    tf_config = {"cluster": {"ps": ["h:1", "h:2"], "chief": ["h:3"], "worker": ["h:4", "h:5"]},
                 "task": {"type": "worker", "index": 1}}
    topology = replica_topology(tf_config, Replicas(workers=3, ps_tasks=2, task=2))
    assert (topology.workers, topology.task, topology.chief) == ([("chief", 0), ("worker", 0), ("worker", 1)], 2, False)
    assert replica_topology({**tf_config, "task": {"type": "chief", "index": 0}}, Replicas()).chief
    assert replica_topology({**tf_config, "task": {"type": "ps", "index": 1}}, Replicas()).task is None
    for replicas, message in [(Replicas(workers=2), "--worker-replicas 2, and TF_CONFIG says 3"),
                              (Replicas(ps_tasks=1), "--num-ps-tasks 1, and TF_CONFIG says 2"),
                              (Replicas(task=0), "--task 0, and TF_CONFIG says 2"),
                              (Replicas(to_aggregate=4), "--replicas-to-aggregate 4: between 1 and the 3 workers")]:
        with pytest.raises(ValueError, match=message):
            replica_topology(tf_config, replicas)
    with pytest.raises(ValueError, match="task worker 2 is not in the cluster"):
        replica_topology({**tf_config, "task": {"type": "worker", "index": 2}}, Replicas())


@pytest.mark.parametrize("impl, tf_config, extra, message", [
    ("legacy", None, ["--sync-replicas", "--task", "1"], "--sync-replicas --task: slim's replica flags train on a"
     " cluster with parameter servers, and TF_CONFIG names no ps job (nor is it set)"),
    ("modern", {"cluster": {"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}},
     [], "TF_CONFIG: ParameterServerStrategy needs one chief task (the coordinator, which runs fit and writes the run)"
     " and a worker job, besides the ps job"),
    ("modern", None, ["--sync-replicas"], "--sync-replicas: slim's replica flags are the legacy half's; modern reads"
     " its cluster from TF_CONFIG alone (with a ps job: ParameterServerStrategy, asynchronous)"),
    ("keras3", {"cluster": {"ps": ["127.0.0.1:1"], "chief": ["127.0.0.1:2"], "worker": ["127.0.0.1:3"]},
                "task": {"type": "chief", "index": 0}},
     [], "a ps job in TF_CONFIG: parameter servers are the legacy half's (tf.train.Server, replica_device_setter) and"
     " the modern half's (ParameterServerStrategy); keras3 does not train with them"),
], ids=["legacy-without-ps", "modern-without-chief", "modern-slim-flags", "keras3-with-ps"])
def test_parameter_server_setups_a_half_cannot_run_are_refused(impl, tf_config, extra, message, tiny, tmp_path):
    env = {**os.environ, **QUIET_TF, **({"TF_CONFIG": json.dumps(tf_config)} if tf_config else {})}
    if not tf_config:
        env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"),
                           *map(str, train_args(impl, tiny[1], tmp_path / "run", "--model", "lenet5", *extra))],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert (proc.returncode, proc.stderr.strip().splitlines()) == (2, [f"train.py: error: {message}"])
    assert not (tmp_path / "run").exists()
