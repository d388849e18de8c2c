"""The cluster ``TF_CONFIG`` describes, in the words a user reads (no TensorFlow here).

TensorFlow names a peer by its device, ``/job:worker/replica:0/task:1``, in the errors a lost peer causes (a
collective aborted by a reset connection, an RPC that timed out). ``lost`` turns such an error into the task's
job, index and address from ``TF_CONFIG``, and ``unreachable`` finds the tasks that accept no connection, so that
the survivors' one line says which machine to look at.
"""

import json
import os
import re

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
    return " and ".join(task_name(job, index, tf_config) for job, index in named)


def unreachable(tf_config=None, timeout=2.0):
    """``task_name`` words of the peers that accept no TCP connection at their ``TF_CONFIG`` address (a task
    whose process never started, or died), joined by " and "."""
    import socket
    tf_config = config() if tf_config is None else tf_config
    missing = []
    for job, index in peers(tf_config):
        host, _, port = tf_config["cluster"][job][index].rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except OSError:
            missing.append(task_name(job, index, tf_config))
    return " and ".join(missing)
