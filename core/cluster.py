"""The cluster ``TF_CONFIG`` describes, in the words a user reads (no TensorFlow here).

TensorFlow names a peer by its device, ``/job:worker/replica:0/task:1``, in the errors a lost peer causes (a
collective aborted by a reset connection, an RPC that timed out). ``lost`` turns such an error into the task's
job, index and address from ``TF_CONFIG``, and ``unreachable`` finds the tasks that accept no connection, so that
the survivors' one line says which machine to look at.

The parameter-server part (legacy's between-graph replication) checks slim's replica flags (``Replicas``:
``--worker_replicas``, ``--num_ps_tasks``, ``--task``, ``--sync_replicas``, ``--replicas_to_aggregate``) against
``TF_CONFIG`` and names this task's place among the workers (``replica_topology``); ``wait_reachable`` waits for
the tasks a worker needs before its Session starts (or the chief before it connects to them); ``report_lost`` says
which workers an asynchronous run (legacy's replicas, modern's ParameterServerStrategy) goes on without.
"""

import json
import os
import re
from dataclasses import dataclass
from types import SimpleNamespace

# How long a worker waits for the cluster's other tasks to start (train.py's --peer-timeout)
PEER_TIMEOUT = 60

DEVICE = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")


def config():
    """``TF_CONFIG`` as a dict (``{}`` when unset)."""
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def task_name(job, index, tf_config):
    """``worker 1 (10.0.0.2:2222)``: a task of ``tf_config``'s cluster as the user wrote it."""
    return f"{job} {index} ({tf_config['cluster'][job][index]})"


def peers(tf_config=None):
    """``[(job, index)]`` of every task of the cluster but this process's own."""
    tf_config = config() if tf_config is None else tf_config
    own = tf_config.get("task", {})
    return [(job, index) for job, addresses in tf_config.get("cluster", {}).items() for index in range(len(addresses))
            if (job, index) != (own.get("type"), own.get("index"))]


def lost(message, tf_config=None):
    """The tasks of ``TF_CONFIG`` other than this one that a TensorFlow error ``message`` names, as ``task_name``
    words joined by " and " ("" when it names none)."""
    tf_config = config() if tf_config is None else tf_config
    own = tf_config.get("task", {})
    named = []
    for job, index in DEVICE.findall(message):
        task = (job, int(index))
        known = task[1] < len(tf_config.get("cluster", {}).get(task[0], []))
        if known and task != (own.get("type"), own.get("index")) and task not in named:
            named.append(task)
    return names(named, tf_config)


def unreachable(tf_config=None, timeout=2.0, tasks=None, prefer=None):
    """``task_name`` words of the peers (or of ``tasks``, ``[(job, index)]``) that accept no TCP connection at
    their ``TF_CONFIG`` address (a task whose process never started, or died), joined by " and "; with ``prefer``
    (a job), only that job's among them when there are any (a dead ps, which the other workers stopped on)."""
    tf_config = config() if tf_config is None else tf_config
    missing = refusing(tf_config, timeout, tasks)
    return names([task for task in missing if task[0] == prefer] or missing, tf_config)


def names(tasks, tf_config):
    """``tasks`` (``[(job, index)]``) in ``task_name``'s words, joined by " and "."""
    return " and ".join(task_name(job, index, tf_config) for job, index in tasks)


def refusing(tf_config, timeout, tasks=None):
    """``[(job, index)]`` of the peers (or of ``tasks``) that accept no TCP connection within ``timeout``."""
    import socket
    missing = []
    for job, index in peers(tf_config) if tasks is None else tasks:
        host, _, port = tf_config["cluster"][job][index].rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except OSError:
            missing.append((job, index))
    return missing


# --- parameter servers (legacy's between-graph replication; what an asynchronous chief reports) -------------

@dataclass(frozen=True)
class Replicas:
    """research/slim's replica flags as train.py parsed them: ``sync`` (``--sync_replicas``), ``to_aggregate``
    (``--replicas_to_aggregate``, None: every worker), and ``workers`` / ``ps_tasks`` / ``task``
    (``--worker_replicas``, ``--num_ps_tasks``, ``--task``: None, or what ``TF_CONFIG`` must say)."""
    sync: bool = False
    to_aggregate: int | None = None
    workers: int | None = None
    ps_tasks: int | None = None
    task: int | None = None

    def given(self):
        """The flags given, as train.py spells them."""
        flags = [("--sync-replicas", self.sync), ("--replicas-to-aggregate", self.to_aggregate is not None),
                 ("--worker-replicas", self.workers is not None), ("--num-ps-tasks", self.ps_tasks is not None),
                 ("--task", self.task is not None)]
        return [flag for flag, given in flags if given]


def replica_topology(tf_config, replicas):
    """The parameter-server cluster of ``tf_config`` (a ``ps`` job, and workers in ``chief`` + ``worker``) as slim
    numbers it: ``SimpleNamespace(job, index, ps_tasks, workers, task, chief)``, ``workers`` the worker tasks in
    order (the chief first; slim's chief is worker 0), ``task`` this one's place among them (None for a ps).

    ``replicas``' ``workers`` / ``ps_tasks`` / ``task``, when given, must agree with ``TF_CONFIG`` (slim's command
    line ported as it was, checked); a ``ValueError`` says where they differ."""
    jobs = tf_config.get("cluster", {})
    own = tf_config.get("task", {})
    workers = [(job, i) for job in ("chief", "worker") for i in range(len(jobs.get(job, [])))]
    job, index = own.get("type"), own.get("index", 0)
    if not workers:
        raise ValueError("a cluster with parameter servers needs workers (a worker job, and optionally a chief)")
    if (job, index) not in workers and not (job == "ps" and 0 <= index < len(jobs["ps"])):
        raise ValueError(f"task {job} {index} is not in the cluster ({', '.join(jobs)})")
    task = workers.index((job, index)) if job != "ps" else None
    said = {"--worker-replicas": (replicas.workers, len(workers)),
            "--num-ps-tasks": (replicas.ps_tasks, len(jobs["ps"])),
            "--task": (replicas.task, task if task is not None else index)}
    for flag, (value, actual) in said.items():
        if value is not None and value != actual:
            raise ValueError(f"{flag} {value}, and TF_CONFIG says {actual}")
    if replicas.to_aggregate is not None and not 1 <= replicas.to_aggregate <= len(workers):
        raise ValueError(f"--replicas-to-aggregate {replicas.to_aggregate}: between 1 and the {len(workers)}"
                         f" workers")
    return SimpleNamespace(job=job, index=index, ps_tasks=len(jobs["ps"]), workers=workers, task=task,
                           chief=task == 0)


def wait_reachable(tasks, tf_config, timeout):
    """Wait up to ``timeout`` seconds for each ``(job, index)`` of ``tasks`` to accept a TCP connection at its
    ``TF_CONFIG`` address; return the ``task_name`` words of those that never did ("" when all did)."""
    import time
    deadline = time.monotonic() + timeout
    while (missing := refusing(tf_config, 1.0, tasks)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return names(missing, tf_config)


def report_lost(tasks, tf_config, lost):
    """Asynchronous training goes on without a lost worker: say once which of ``tasks`` (``[(job, index)]``) stopped
    accepting connections since the last call (``lost``, what it returned), and once when one is back; return
    the set of those refusing now."""
    now = set(refusing(tf_config, 1.0, tasks))
    for job, index in sorted(now ^ lost):
        state = "is not answering; training goes on without it" if (job, index) in now else "is back"
        print(f"train: {task_name(job, index, tf_config)} {state}", flush=True)
    return now
