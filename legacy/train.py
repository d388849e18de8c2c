"""Training the TF1 way: one graph, a Session, Saver and FileWriter (twin: modern/train.py).

The article's train.py, kept honest for TF 2.21's ``tf.compat.v1``:

* the input is ``flowio.graph_input`` — a ``tf.data`` iterator inside the graph, where the article started
  queue runners;
* research/slim's train_image_classifier recipe (``legacy/optimizers.py``, docs/DESIGN.md §10): the TF1 optimizer
  (``MomentumOptimizer`` by default) on slim's schedule of the global step (``exponential_decay``, lr * 0.9 per
  epoch by default), slim's label smoothing, ``--trainable-scopes`` (the optimizer's var_list; BN in the other
  scopes still updates its moving statistics, as under slim), ``--clip-gradient-norm`` (``create_train_op``'s, per
  gradient) and ``ExponentialMovingAverage`` of the model variables after each step: validation, the best
  checkpoint and so evaluate / export / use_model see the averages, the last checkpoint holds the raw weights and
  the shadows for resuming;
* BN's statistics re-estimated before each validation ("precise BN", ``--bn-statistics precise``, the default where
  the net's BN decay can be set): the net again in training mode with BN decay 0 on the first training batches
  (un-augmented), the moving statistics set to their mean; slim's own behaviour (the moving averages as they are)
  is ``--bn-statistics moving``;
* BN moving statistics are updated only because the train op depends on the UPDATE_OPS collection;
* the loss is the cross-entropy plus the REGULARIZATION_LOSSES collection (slim's l2 on every conv kernel);
* ``global_step`` counts steps and is saved with the weights: a ``Saver`` keeps the last checkpoint (every
  ``save_every`` steps and at each epoch end) and another the best one (by validation accuracy); a rerun
  restores the last and starts the input at that step, so no batch is seen twice; no ``.meta`` files (the
  graph is rebuilt from code, and DenseNet-201's would be 75 MB per checkpoint and 1.5 s per save);
* ``FileWriter`` summaries with Keras's tag names (``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate``
  under ``logs/train`` and ``logs/validation``), so TensorBoard shows both halves alike;
* fine-tuning as slim did it (``assign_from_checkpoint_fn`` after ``checkpoint_exclude_scopes``):
  ``--init-from`` loads the model variables outside the excluded scopes by name from a legacy, tf_slim or
  modern checkpoint into the freshly initialised graph;
* ``--precision mixed_bfloat16`` / ``mixed_float16`` as TF1 did it: grappler's mixed-precision rewrite of the
  float32 graph, switched on in the Session config (``session_config``), with a loss-scale optimizer for float16;
* a tqdm progress line while an epoch runs (on a terminal), and one line of metrics when it ends;
* several devices and machines as slim deployed them: model_deploy's clones in one graph (``--num-clones``), and
  between-graph replication with parameter servers when ``TF_CONFIG`` names a ps job (``deploy``): the variables
  on the ps tasks (``replica_device_setter``), each worker on its share of every batch, synchronous through
  ``SyncReplicasOptimizer`` (``--sync-replicas``) or asynchronous; the chief initialises, validates and saves, the
  others wait for it (``session``, ``wait_for_chief``), and a lost peer ends in one line (``peer_errors``).

Sections, in the same order as the twin: counters, input, devices, model and loss, checkpoints, the loop.
Prediction and weight I/O are the twin modules ``weights.py``.
"""

import contextlib
import os
import re
import sys
import time
from types import SimpleNamespace

import numpy as np
from tqdm import tqdm

import flowio
import legacy
from core import checkpoints, cluster, models, recipe
from core.errors import UserError
from core.run_dir import LEGACY_BEST, LEGACY_LAST, LOGS
from legacy import optimizers
from legacy.slim_compat import tf, tf1_hashing
from legacy.weights import assign
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.util import _pywrap_util_port


# --- counters -----------------------------------------------------------------------------------------

def saved_step(checkpoint_dir):
    """The global step of the latest checkpoint in ``checkpoint_dir`` (0 when there is none)."""
    path = tf.train.latest_checkpoint(checkpoint_dir)
    if path is None:
        return 0
    checkpoints.check_complete(path, "pass --fresh to start the run over")
    return int(tf.train.load_checkpoint(path).get_tensor("global_step"))


# --- input ----------------------------------------------------------------------------------------------

def inputs(graph, run, records_dir, start):
    """``(images, labels, val_images, val_labels)`` in ``graph``: training batches from global step ``start``
    on (augmented, seeded, the epochs' order fixed), and the validation batches in order."""
    h = run.hyper
    recipe = run.preprocessing  # what the run recorded, its vgg sides included, not this version's choice
    images, labels = flowio.graph_input(graph, records_dir, "train", run.image_size, h.batch_size, training=True,
                                        flip=h.flip, seed=h.seed, drop_remainder=True, initial_step=start,
                                        recipe=recipe)
    val_images, val_labels = flowio.graph_input(graph, records_dir, "validation", run.image_size, h.batch_size,
                                                recipe=recipe)
    return images, labels, val_images, val_labels


def statistics_input(graph, run, records_dir, batches):
    """Images in ``graph`` that give the first ``batches`` training batches, un-augmented, over and over: what
    precise BN averages over (modern's ``statistics_data``)."""
    with graph.as_default():
        data = flowio.dataset(records_dir, "train", run.image_size, run.hyper.batch_size, drop_remainder=True,
                              recipe=run.preprocessing).take(batches).repeat()
        return tf.data.make_one_shot_iterator(data).get_next()[0]


# --- devices --------------------------------------------------------------------------------------------

def session_config(precision):
    """The Session config that runs the float32 graph in ``precision`` (TF1 had no dtype policies).

    Grappler rewrites the graph when the Session first runs it: ``mixed_bfloat16`` through oneDNN on CPU,
    ``mixed_float16`` on GPU. Variables stay float32; the loss stays float32 (grappler's deny list), the head's
    matmul does not (modern keeps the whole head in float32).

    The bfloat16 rewrite is oneDNN's: in a process where oneDNN is off it leaves the graph float32 without a
    word. TensorFlow 2.21 switches oneDNN on by default on some x86 CPUs only (on an AMD EPYC with AVX-512
    here, not on an AMD EPYC with AVX2, where ``TF_ENABLE_ONEDNN_OPTS=1`` switches it on and the rewrite runs);
    the switch is read once, when TensorFlow starts, so train.py sets it for ``mixed_bfloat16`` before importing
    TensorFlow and this refuses a process where it is off (tests/test_precision.py).
    """
    config = tf.ConfigProto()
    rewrites = config.graph_options.rewrite_options
    if precision == "mixed_bfloat16":
        if not _pywrap_util_port.IsMklEnabled():
            raise UserError("--precision mixed_bfloat16 in a TF1 Session is oneDNN's graph rewrite, and oneDNN is"
                            " off in this process: unset TF_ENABLE_ONEDNN_OPTS=0, or set TF_ENABLE_ONEDNN_OPTS=1")
        rewrites.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == "mixed_float16":
        rewrites.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    return config


def deployment_config(num_clones=1, clone_on_cpu=False):
    """model_deploy's ``DeploymentConfig``, what ``training_graph`` needs of it: ``clones`` and each clone's
    device (``clone_device``): with ``clone_on_cpu`` every clone on ``/device:CPU:0``, else clone ``i`` on
    ``/device:GPU:i``; one clone has no device of its own."""
    devices = tuple("/device:CPU:0" if clone_on_cpu else f"/device:GPU:{i}" for i in range(num_clones))
    return SimpleNamespace(clones=num_clones, devices=devices if num_clones > 1 else ("",), replicas=None)


DEPLOYMENT = deployment_config()  # this process's, set by deploy; ``replicas`` set on a parameter-server cluster


def deploy(num_clones=1, clone_on_cpu=False, peer_timeout=cluster.PEER_TIMEOUT, replicas=None):
    """Place this process's clones or join its parameter-server cluster (the half protocol's ``deploy``,
    ``core.halves``); return whether this process writes the run.

    On one machine: True (a ``TF_CONFIG`` cluster without a ps job, MultiWorkerMirrored's, is the modern half's).
    Clones on GPUs are refused when there are fewer GPUs than clones: slim's graph would fail at its first run
    with a placement error.

    With a ps job in ``TF_CONFIG`` this is research/slim's between-graph replication: the process starts its
    ``tf.train.Server``; a ps task serves its share of the variables until it is stopped (this never returns, as
    slim's ``server.join()``); a worker returns whether it is the chief (worker 0, or the chief job's task), which
    initialises, validates, saves and writes the run (``train``). ``replicas`` (``core.cluster.Replicas``):
    slim's flags, checked against ``TF_CONFIG``.
    """
    tf_config = cluster.config()
    if replicas is None:
        replicas = cluster.Replicas()
    if "ps" not in tf_config.get("cluster", {}):
        if replicas.given():
            raise UserError(f"{' '.join(replicas.given())}: slim's replica flags train on a cluster with parameter"
                            f" servers, and TF_CONFIG names no ps job (nor is it set)")
        if tf_config:
            raise UserError("TF_CONFIG names no ps job: legacy trains on a cluster with parameter servers (slim's"
                            " --num_ps_tasks), and workers alone (MultiWorkerMirroredStrategy) are the modern half's;"
                            " add a ps job, or unset TF_CONFIG to train on one machine")
        if num_clones > 1 and not clone_on_cpu:
            gpus = len(tf.config.list_physical_devices("GPU"))
            if gpus < num_clones:
                raise UserError(f"--num-clones {num_clones} puts clone i on GPU i and this machine has {gpus}"
                                f" GPU(s); pass --clone-on-cpu to put every clone on the CPU")
        vars(DEPLOYMENT).update(vars(deployment_config(num_clones, clone_on_cpu)))
        return True
    if num_clones > 1:
        raise UserError("--num-clones with parameter servers: each worker here is one clone (slim's clones on a"
                        " worker's GPUs are not ported); leave --num-clones at 1")
    try:
        topology = cluster.replica_topology(tf_config, replicas)
    except ValueError as err:
        raise UserError(f"TF_CONFIG: {err}") from None
    if replicas.sync and replicas.to_aggregate not in (None, len(topology.workers)):
        raise UserError(f"--replicas-to-aggregate {replicas.to_aggregate} with {len(topology.workers)} workers:"
                        f" backup workers (a step takes the first gradients, the others are dropped as stale) are"
                        f" not ported; leave it at the number of workers")
    name = cluster.task_name(topology.job, topology.index, tf_config)
    # TensorFlow's gRPC calls wait for a peer that is down ("wait for ready") unless GRPC_FAIL_FAST is "true":
    # without it a worker whose ps died printed its error and then hung at exit, in the Session's __del__ closing
    # the master session on the dead ps (RFC 355 of tensorflow/community; ParameterServerStrategy's guide sets
    # "use_caller" for the same reason). Every peer this process talks to is up before its Session starts
    # (``session`` waits for them), so failing fast only shortens the path of a fault.
    os.environ.setdefault("GRPC_FAIL_FAST", "true")
    try:
        server = tf.train.Server(tf.train.ClusterSpec(tf_config["cluster"]), job_name=topology.job,
                                 task_index=topology.index)
    except tf.errors.OpError as err:
        raise UserError(f"TF_CONFIG: {name} could not serve there: {err.message.splitlines()[0]}") from None
    if topology.job == "ps":
        print(f"train: {name} serves its share of the variables until it is stopped", flush=True)
        server.join()
    DEPLOYMENT.replicas = SimpleNamespace(
        **vars(topology), sync=replicas.sync, server=server, timeout=peer_timeout, tf_config=tf_config, lost=set(),
        updates_per_round=1 if replicas.sync else len(topology.workers),
        # a step of a lost synchronous peer waits for a gradient that never comes: the wait ends in an error
        run_options=tf.RunOptions(timeout_in_ms=peer_timeout * 1000),
        device=tf.train.replica_device_setter(worker_device=f"/job:{topology.job}/task:{topology.index}",
                                              cluster=tf.train.ClusterSpec(tf_config["cluster"])))
    return topology.chief


# --- model and loss ----------------------------------------------------------------------------------

def cross_entropy(labels, logits, num_classes, label_smoothing, weights=1.0, reduction=None):
    """The sparse cross-entropy, or with ``label_smoothing`` > 0 slim's ``softmax_cross_entropy`` of the one-hot
    labels smoothed to ``(1 - s) * onehot + s / num_classes``."""
    reduction = reduction or tf.losses.Reduction.SUM_BY_NONZERO_WEIGHTS
    if not label_smoothing:
        return tf.losses.sparse_softmax_cross_entropy(labels, logits, weights=weights, reduction=reduction)
    return tf.losses.softmax_cross_entropy(tf.one_hot(labels, num_classes), logits, weights=weights,
                                           label_smoothing=label_smoothing, reduction=reduction)


def clone_loss(run, images, labels, num_clones):
    """One clone: the model on its share of the batch, ``(logits, its cross-entropy / num_clones)``.

    model_deploy's ``_gather_clone_loss``: the clone's LOSSES (the mean cross-entropy of its share, plus
    inception_v3's auxiliary head's at the table's weight, 0.4) divided by the number of clones, so that the
    clones' sum is the mean over the whole batch.
    """
    h = run.hyper
    logits, end_points = legacy.build(run.model, images, run.num_classes, is_training=True,
                                      weight_decay=h.weight_decay, batch_norm_decay=h.batch_norm_decay)
    loss = cross_entropy(labels, logits, run.num_classes, h.label_smoothing)
    if models.aux_scopes(run.model):  # research/slim's train_image_classifier: the AuxLogits' loss, weighed
        loss += cross_entropy(labels, end_points["AuxLogits"], run.num_classes, h.label_smoothing,
                              weights=models.spec(run.model).aux_loss_weight)
    return logits, loss / num_clones if num_clones > 1 else loss


def training_graph(run, images, labels, decay_steps, deployment=DEPLOYMENT):
    """The model on ``images`` and its training in the current graph: ``(logits, loss, regularization, train_op)``.

    ``loss`` is the mean cross-entropy (plus inception_v3's auxiliary head's) plus the REGULARIZATION_LOSSES
    collection; ``train_op`` runs the BN moving-average updates (UPDATE_OPS), the optimizer's step on slim's
    schedule (``decay_steps`` global steps per decay) and then, with ``--moving-average-decay``, the moving
    averages of the model variables; and gives the loss.

    With ``deployment.clones`` > 1 this is model_deploy's ``deploy``: the batch (the global one) is split into
    equal shares, clone ``i`` runs on share ``i`` in name scope ``clone_i`` on its device, sharing the first
    clone's variables; the regularization joins the first clone's loss only; each clone's gradients are computed
    on its device and summed (``_sum_clones_gradients``); BN's moving statistics are updated from the first
    clone's share alone (train_image_classifier takes UPDATE_OPS of ``first_clone_scope``), while each clone
    normalises its own share with its own batch statistics. Without BN, two clones compute one clone's step on
    the whole batch (tests/test_clones.py).
    """
    h = run.hyper
    count = deployment.clones
    shares = zip(tf.split(images, count), tf.split(labels, count)) if count > 1 else [(images, labels)]
    clones = []  # (logits, loss, name scope, device)
    for i, (share, share_labels) in enumerate(shares):
        with (tf.name_scope(f"clone_{i}") if count > 1 else contextlib.nullcontext()) as scope, \
                tf.device(deployment.devices[i]), \
                tf.variable_scope(tf.get_variable_scope(), reuse=True if i > 0 else None):
            clones.append((*clone_loss(run, share, share_labels, count), scope, deployment.devices[i]))
    scope = models.scope(run.model)
    model_variables = [v for v in tf.global_variables() if checkpoints.model_variables([v.op.name], scope)]
    global_step = tf.train.get_or_create_global_step()
    lr = optimizers.learning_rate(h, global_step, decay_steps)
    regularization = tf.losses.get_regularization_loss()
    clone_losses = [loss + regularization if i == 0 else loss for i, (_, loss, _, _) in enumerate(clones)]
    loss = tf.add_n(clone_losses) if count > 1 else clone_losses[0]
    # slim's create_train_op: the loss waits for the BN updates, and the train op is the loss waiting for the
    # gradient step. The common `with control_dependencies(UPDATE_OPS): minimize(loss)` instead gives each op
    # minimize creates an edge from every update op: 900k edges in DenseNet-201's graph, seconds of grappler
    # pruning them. The train op must be the gated loss, not minimize's op: the gradients do not run the loss's
    # forward op, so `sess.run(minimize_op)` alone skipped every BN update (tests/test_models.py's --bn-decay 0).
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS, clones[0][2] if count > 1 else None)):
        loss = tf.identity(loss, name="loss_after_updates")
    optimizer = optimizers.optimizer(h, lr)
    if h.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
        optimizer = tf.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, "dynamic")
    averages = tf.train.ExponentialMovingAverage(h.moving_average_decay, num_updates=global_step) \
        if h.moving_average_decay else None
    if deployment.replicas is not None and deployment.replicas.sync:
        optimizer = sync_replicas(optimizer, len(deployment.replicas.workers), averages, model_variables)
    trained = trained_variables(h.trainable_scopes)
    if count > 1:
        gradients = []
        for clone, (_, _, name, device) in zip(clone_losses, clones):
            with tf.name_scope(name), tf.device(device):
                gradients.append(optimizer.compute_gradients(clone, trained))
        gradients = sum_gradients(gradients)
    else:
        gradients = optimizer.compute_gradients(loss, trained)
    if h.clip_gradient_norm > 0:  # slim's create_train_op(clip_gradient_norm=...): each gradient by its own norm
        gradients = [(tf.clip_by_norm(g, h.clip_gradient_norm), v) for g, v in gradients if g is not None]
    step = optimizer.apply_gradients(gradients, global_step)
    if averages is not None and not isinstance(optimizer, tf.train.SyncReplicasOptimizer):
        # after the step (slim groups the two and leaves the order open), so num_updates is the incremented step
        with tf.control_dependencies([step]):
            step = averages.apply(model_variables)
    with tf.control_dependencies([step]):
        train_op = tf.identity(loss, name="train_op")
    logits = tf.concat([c[0] for c in clones], 0) if count > 1 else clones[0][0]
    return logits, loss, regularization, train_op


def sync_replicas(optimizer, workers, averages, model_variables):
    """research/slim's ``--sync_replicas``: ``optimizer`` in a ``SyncReplicasOptimizer`` that averages one gradient
    of each of the ``workers`` per step (each worker's loss is the mean over its share of the global batch, so the
    step is the single-process step on the whole batch) and, with ``averages``, updates the moving averages of
    ``model_variables`` in the chief's step (slim passes them there too). It joins the graph's
    ``SYNC_REPLICAS`` collection, where ``replica_ops`` finds the chief's queue runner and the init ops."""
    sync = tf.train.SyncReplicasOptimizer(optimizer, replicas_to_aggregate=workers, total_num_replicas=workers,
                                          variable_averages=averages,
                                          variables_to_average=model_variables if averages else None)
    tf.add_to_collection(SYNC_REPLICAS, sync)
    return sync


SYNC_REPLICAS = "sync_replicas_optimizer"


def sum_gradients(clone_gradients):
    """model_deploy's ``_sum_clones_gradients``: each variable's gradients from every clone, summed (each clone's
    loss is already divided by the number of clones)."""
    summed = []
    for pairs in zip(*clone_gradients):
        variable = pairs[0][1]
        grads = [g for g, _ in pairs if g is not None]
        if grads:
            summed.append((tf.add_n(grads, name=variable.op.name + "/sum_grads") if len(grads) > 1 else grads[0],
                           variable))
    return summed


def trained_variables(scopes):
    """slim's ``_get_variables_to_train``: the trainable variables under ``scopes`` (each a prefix pattern,
    ``re.match`` as ``get_collection`` does), or all of them."""
    if not scopes:
        return tf.trainable_variables()
    trained = [v for scope in scopes for v in tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope)]
    if not trained:
        raise UserError(f"--trainable-scopes {','.join(scopes)}: no trainable variable there (they are named like"
                        f" {max(v.op.name for v in tf.trainable_variables())})")
    return trained


def swap_averages_op(model_variables):
    """One op that exchanges every model variable with its moving average (run twice, it restores them): the
    graph then computes with the averages, and a Saver of the model's names saves them as the weights."""
    shadows = {v.op.name: v for v in tf.global_variables() if v.op.name.endswith(checkpoints.EMA)}
    swaps = []
    for variable in model_variables:
        shadow = shadows[variable.op.name + checkpoints.EMA]
        raw, average = variable.read_value(), shadow.read_value()
        with tf.control_dependencies([raw, average]):  # both read before either is written
            swaps.append(tf.group(variable.assign(average), shadow.assign(raw)))
    return tf.group(*swaps, name="swap_averages")


def precise_bn_graph(run, images, model_variables):
    """``(updates, statistics, assign)`` for precise BN: the net in training mode on ``images`` with BN decay 0
    (its UPDATE_OPS set each moving statistic to the batch's), the moving statistics, and ``assign`` (a dict
    ``{"op", "values"}``: placeholders to feed their means)."""
    before = set(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        legacy.build(run.model, images, run.num_classes, is_training=True, weight_decay=run.hyper.weight_decay,
                     batch_norm_decay=0.0, **({"dropout_keep_prob": 1.0} if models.spec(run.model).dropout_keep_prob else {}))
    updates = [op for op in tf.get_collection(tf.GraphKeys.UPDATE_OPS) if op not in before]
    statistics = [v for v in model_variables if v.op.name.endswith(("/moving_mean", "/moving_variance"))]
    values = [tf.placeholder(v.dtype.base_dtype, v.shape) for v in statistics]
    return updates, statistics, {"op": tf.group(*[v.assign(x) for v, x in zip(statistics, values)]), "values": values}


def validation_graph(run, images, labels):
    """The same variables in inference mode on ``images``: ``(sum of cross-entropies, correct, count)``, the
    cross-entropy label-smoothed as training's (Keras's validation loss is the compiled loss)."""
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        logits, _ = legacy.build(run.model, images, run.num_classes, is_training=False)
    losses = cross_entropy(labels, logits, run.num_classes, run.hyper.label_smoothing,
                           reduction=tf.losses.Reduction.NONE)
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.float32))
    return tf.reduce_sum(losses), correct, tf.size(labels)


def build_graph(run, records_dir, start, decay_steps, steps_per_epoch):
    """``(graph, ops)``: the finalized graph of a run resumed at global step ``start``, and what the loop uses of it
    by name (tensors, Savers, the summary writers)."""
    graph = tf.Graph()
    replicas = DEPLOYMENT.replicas
    with graph.as_default(), tf1_hashing(), \
            tf.device(replicas.device if replicas else None):  # variables on the ps tasks, the rest here
        tf.set_random_seed(run.hyper.seed)
        images, labels, val_images, val_labels = inputs(graph, run, records_dir, start)
        if replicas:  # this worker's share of the global batch
            images, labels = (tf.split(t, len(replicas.workers))[replicas.task] for t in (images, labels))
        logits, loss, regularization, train_op = training_graph(run, images, labels, decay_steps)
        ops = SimpleNamespace(
            train_op=train_op, loss=loss, regularization=regularization, global_step=tf.train.get_global_step(),
            accuracy=tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.float32)),
            validation=validation_graph(run, val_images, val_labels),
            model_variables=[v for v in tf.global_variables()
                             if checkpoints.model_variables([v.op.name], models.scope(run.model))],
            savers=SimpleNamespace(last=tf.train.Saver(max_to_keep=1, save_relative_paths=True),
                                   best=tf.train.Saver(max_to_keep=1, save_relative_paths=True)),
            writers={s: tf.summary.FileWriter(run.path(LOGS, s)) for s in ("train", "validation")},
            init=tf.global_variables_initializer())
        ops.swap_averages = swap_averages_op(ops.model_variables) if run.hyper.moving_average_decay else None
        ops.precise_bn = None
        if run.hyper.batch_norm_statistics == "precise":
            batches = min(run.hyper.precise_bn_batches, steps_per_epoch)
            updates, statistics, assign = precise_bn_graph(run, statistics_input(graph, run, records_dir, batches),
                                                           ops.model_variables)
            ops.precise_bn = SimpleNamespace(batches=batches, updates=updates, statistics=statistics, assign=assign)
        ops.replicas = replica_ops(replicas) if replicas else None
    graph.finalize()
    return graph, ops


def replica_ops(replicas):
    """What the workers of a parameter-server cluster share besides the model: ``chief_epochs`` (on a ps, in no
    collection, so neither initialised with the variables nor saved), the epochs the chief has validated and
    saved, which it sets once the session is ready (``publish``) and the other workers wait for at each epoch's
    end; ``ready``, the variables not yet ready for a worker (``chief_epochs`` among them); the
    ``SyncReplicasOptimizer``'s init ops and the chief's queue runner with ``--sync-replicas``."""
    chief_epochs = chief_epochs_variable()
    epochs = tf.placeholder(tf.int64, [])
    sync = (tf.get_collection(SYNC_REPLICAS) or [None])[0]
    ready = tf.report_uninitialized_variables(tf.global_variables() + [chief_epochs])
    for unused in (ready, sync and sync.ready_for_local_init_op):  # the chief runs neither: no warning at its exit
        if unused is not None:
            unused.mark_used()
    return SimpleNamespace(
        chief_epochs=chief_epochs, publish={"op": chief_epochs.assign(epochs), "epochs": epochs},
        ready=ready, sync=sync,
        local_init=None if sync is None else (sync.chief_init_op if replicas.chief else sync.local_step_init_op),
        queue_runner=sync.get_chief_queue_runner() if sync is not None and replicas.chief else None,
        # no tokens at the start (slim's learning.train fills replicas_to_aggregate, letting each worker run a step
        # ahead on weights the first update has not reached, its gradient then dropped as stale): every step
        # waits for the previous update, and a synchronous step is the single-process step on the global batch
        init_tokens=sync.get_init_tokens_op(num_tokens=0) if sync is not None and replicas.chief else None)


def chief_epochs_variable():
    """``chief_epochs``, on ps 0 whatever the ps tasks (a worker reads it in a graph of its own, ``rejoined``)."""
    with tf.device("/job:ps/task:0"):
        return tf.Variable(0, dtype=tf.int64, trainable=False, collections=[], name="chief_epochs")


def initialise(sess, model_variables, run, init_from):
    """Fine-tuning: the variables outside ``init_from["exclude_scopes"]`` from ``init_from["checkpoint"]``."""
    values, source = checkpoints.read(init_from["checkpoint"], models.scope(run.model))
    restored = assign(sess, model_variables, values, models.scope(run.model), init_from["exclude_scopes"], source)
    run.init_from = {**init_from, "source": source, "restored": restored,
                     "initialised": len(model_variables) - restored}


# --- checkpoints ----------------------------------------------------------------------------------------

CHECKPOINT_FILE = re.compile(r"^(model\.ckpt-\d+)\.(index|data-\d+-of-\d+)$")


def remove_orphans(folder, state):
    """Delete the files of checkpoints ``state`` (the folder's ``checkpoint`` file) does not list. A Saver killed
    after writing a checkpoint and before updating the state, or after the state and before retiring the previous
    one (max_to_keep), leaves files that no later save would ever delete."""
    listed = {os.path.basename(p) for p in (state.all_model_checkpoint_paths if state else ())}
    for name in os.listdir(folder):
        match = CHECKPOINT_FILE.match(name)
        if match and match.group(1) not in listed:
            os.unlink(os.path.join(folder, name))


class Savers:
    """The run's two Savers: ``last`` (every ``save_every`` steps and each epoch end) and ``best``."""

    def __init__(self, sess, ops, run):
        self.sess, self.savers = sess, ops.savers
        self.folders = SimpleNamespace(last=run.path(LEGACY_LAST), best=run.path(LEGACY_BEST))
        for kind in ("last", "best"):
            folder = getattr(self.folders, kind)
            os.makedirs(folder, exist_ok=True)
            state = tf.train.get_checkpoint_state(folder)
            if state:  # so that max_to_keep also retires the checkpoints of the run before this one
                getattr(self.savers, kind).recover_last_checkpoints(list(state.all_model_checkpoint_paths))
            remove_orphans(folder, state)

    def start(self, ops, run, start, init_from):
        """Restore the last checkpoint when resuming at ``start`` > 0; else initialise (and fine-tune)."""
        if start:
            self.savers.last.restore(self.sess, tf.train.latest_checkpoint(self.folders.last))  # checked by saved_step
        else:
            self.sess.run(ops.init)
            if init_from:
                initialise(self.sess, ops.model_variables, run, init_from)

    def save(self, kind, step):
        getattr(self.savers, kind).save(self.sess, os.path.join(getattr(self.folders, kind), "model.ckpt"),
                                        global_step=step, write_meta_graph=False)


# --- the loop -----------------------------------------------------------------------------------------

def train(run, records_dir, progress=True, init_from=None):
    """Train (or resume) ``run`` (its run.json record, updated as epochs end) on the records in ``records_dir``.

    ``init_from`` (``{"checkpoint": path, "exclude_scopes": [...]}``) sets the first weights of a run that
    starts at step 0. On a parameter-server cluster (``deploy``) every worker runs this: each trains on its share
    of every global batch; the chief validates, saves and records as on one machine, and the others wait at
    each epoch's end until it has, then validate what it saved into their scratch record.
    """
    h = run.hyper
    replicas = DEPLOYMENT.replicas
    steps_per_epoch, val_steps = flowio.epoch_steps(records_dir, h.batch_size)
    if replicas and h.batch_size % len(replicas.workers):
        raise UserError(f"--batch-size {h.batch_size}: each of the {len(replicas.workers)} workers trains on an equal"
                        f" share of every batch, so it must divide by {len(replicas.workers)}")
    if replicas and not replicas.sync and h.moving_average_decay:
        raise UserError("--moving-average-decay with asynchronous replicas: the chief swaps the averages into the"
                        " shared weights to validate while the other workers train on them; pass --sync-replicas"
                        " (the chief then updates the averages with each step, as slim did)")
    # asynchronous workers update one share each: a global step is a share, and a round of batches is several
    per_round = replicas.updates_per_round if replicas else 1
    start = saved_step(checkpoint_folder(run))
    if replicas and not replicas.sync and not replicas.chief:
        start = rejoined(start, steps_per_epoch * per_round, replicas)
    start = run.resume_at(start)
    decay_steps = recipe.decay_steps(h, flowio.num_examples(records_dir, "train")) * per_round
    graph, ops = build_graph(run, records_dir, start // per_round, decay_steps, steps_per_epoch)
    if DEPLOYMENT.clones > 1:
        run.distribute = {"strategy": "model_deploy", "replicas": DEPLOYMENT.clones}
    if replicas:
        run.distribute = {"strategy": "SyncReplicasOptimizer" if replicas.sync else "asynchronous",
                          "replicas": len(replicas.workers), "ps_tasks": replicas.ps_tasks}
    with session(graph, ops, run, start, init_from, start // per_round // steps_per_epoch) as (sess, savers), \
            peer_errors(replicas):
        round_ = start // per_round
        for epoch in range(round_ // steps_per_epoch, h.epochs):
            round_, loss, accuracy = train_epoch(sess, ops, savers, h, epoch, round_, steps_per_epoch, progress)
            if savers is None:  # another worker of the cluster: once the chief is done with the epoch
                wait_for_chief(sess, ops, epoch + 1, replicas)
            elif ops.swap_averages is not None:  # validation and the best checkpoint see the moving averages
                sess.run(ops.swap_averages)
            if savers is not None and ops.precise_bn is not None and ops.precise_bn.statistics:
                precise_statistics(sess, ops.precise_bn)
            val_loss, val_accuracy = validate(sess, ops, val_steps)
            step = int(sess.run(ops.global_step))
            metrics = {"epoch": epoch + 1, "step": step,
                       "lr": float(recipe.learning_rate(h, step - 1, decay_steps)),  # the graph's schedule
                       "loss": loss, "accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy}
            _summary(ops.writers["train"], epoch, loss=loss, accuracy=accuracy, learning_rate=metrics["lr"])
            _summary(ops.writers["validation"], epoch, loss=val_loss, accuracy=val_accuracy)
            # run.json first: killed between the two, the rerun resumes before the epoch's end and records it
            # again, where the other order would resume after it with its metrics never written
            improved = run.record_epoch(metrics)
            if savers is not None:
                if improved:
                    savers.save("best", step)
                if ops.swap_averages is not None:  # the last checkpoint holds the raw weights and the averages
                    sess.run(ops.swap_averages)
                savers.save("last", step)
                if replicas:
                    sess.run(ops.replicas.publish["op"], {ops.replicas.publish["epochs"]: epoch + 1})
                    if not replicas.sync:  # asynchronous workers train on without a lost one: say which
                        replicas.lost = cluster.report_lost(replicas.workers[1:], replicas.tf_config, replicas.lost)
            print(f"epoch {epoch + 1}/{h.epochs}: " + ", ".join(
                f"{k} {metrics[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")), flush=True)
    for writer in ops.writers.values():
        writer.close()


def checkpoint_folder(run):
    """Where the run resumes from: its last checkpoint, the chief's on the other workers of a cluster (their run
    is a scratch copy; ``run.chief_folder`` is unset with --fresh)."""
    if DEPLOYMENT.replicas and not DEPLOYMENT.replicas.chief and run.chief_folder:
        return os.path.join(run.chief_folder, LEGACY_LAST)
    return run.path(LEGACY_LAST)


def rejoined(start, epoch_steps, replicas):
    """Where an asynchronous worker other than the chief starts: at ``start``, the chief's last checkpoint, unless
    the chief has published more epochs than that (it trains on without waiting for the others): then at the start
    of the chief's current epoch (a worker restarted after it died rejoins the run). ``epoch_steps``: the global
    steps of an epoch."""
    ready(replicas, [("ps", 0)])
    graph = tf.Graph()
    with graph.as_default():
        epochs = chief_epochs_variable()
        initialised = tf.is_variable_initialized(epochs)
    with peer_errors(replicas), \
            tf.Session(replicas.server.target, graph=graph, config=replica_config(replicas)) as sess:
        published = int(sess.run(epochs)) if sess.run(initialised) else 0
    return start if published <= start // epoch_steps else published * epoch_steps


def train_epoch(sess, ops, savers, h, epoch, step, steps_per_epoch, progress):
    """Run the steps of ``epoch`` from ``step`` (a global batch's index) on; return ``(step, mean loss, mean
    accuracy)``. On a cluster the loss and accuracy are this worker's share's."""
    losses, accuracies = [], []
    end = (epoch + 1) * steps_per_epoch
    options = DEPLOYMENT.replicas.run_options if DEPLOYMENT.replicas else None
    bar = tqdm(total=steps_per_epoch, initial=step - epoch * steps_per_epoch, unit="step", leave=False,
               desc=f"epoch {epoch + 1}/{h.epochs}", disable=not (progress and sys.stderr.isatty()))
    with bar:
        while step < end:
            _, step_loss, step_accuracy = sess.run([ops.train_op, ops.loss, ops.accuracy], options=options)
            step += 1
            losses.append(step_loss)
            accuracies.append(step_accuracy)
            bar.update()
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", accuracy=f"{np.mean(accuracies):.4f}")
            if savers is not None and step % h.save_every == 0 and step < end:
                savers.save("last", ops.global_step)
    return step, float(np.mean(losses)), float(np.mean(accuracies))


@contextlib.contextmanager
def session(graph, ops, run, start, init_from, epochs_done):
    """``(sess, savers)``: the run's Session with its variables initialised, restored at global step ``start`` or
    fine-tuned (``Savers.start``), and its Savers; on a parameter-server cluster the Session of this worker's
    server, the chief's ready once it has initialised or restored the variables (and started
    ``SyncReplicasOptimizer``'s queue runner) and published ``epochs_done``, another worker's once the chief's is
    (``SessionManager``, as ``MonitoredTrainingSession`` waits), without Savers (None)."""
    replicas = DEPLOYMENT.replicas
    if replicas is None:
        with tf.Session(graph=graph, config=session_config(run.hyper.precision)) as sess:
            savers = Savers(sess, ops, run)
            savers.start(ops, run, start, init_from)
            yield sess, savers
        return
    config = replica_config(replicas, run.hyper.precision)
    ready(replicas, [("ps", i) for i in range(replicas.ps_tasks)] + ([] if replicas.chief else replicas.workers[:1]))
    shared = ops.replicas
    coordinator, threads = tf.train.Coordinator(), []
    with peer_errors(replicas):
        if replicas.chief:
            sess = tf.Session(replicas.server.target, graph=graph, config=config)
        else:
            manager = tf.train.SessionManager(
                local_init_op=shared.local_init, ready_op=shared.ready, graph=graph, recovery_wait_secs=0.5,
                ready_for_local_init_op=None if shared.local_init is None else shared.ready)
            try:
                sess = manager.wait_for_session(replicas.server.target, config=config,
                                                max_wait_secs=replicas.timeout)
            except tf.errors.DeadlineExceededError:
                raise UserError(f"TF_CONFIG: the chief, {chief_name(replicas)}, did not make the variables ready"
                                f" within {replicas.timeout} s (is it running train.py with this cluster?)") from None
    try:
        with sess.as_default(), graph.as_default():  # as on one machine (a Saver outside takes its eager branch)
            with peer_errors(replicas):
                savers = None
                if replicas.chief:
                    savers = Savers(sess, ops, run)
                    savers.start(ops, run, start, init_from)
                    if shared.sync is not None:
                        sess.run([shared.local_init, shared.init_tokens])
                        threads = shared.queue_runner.create_threads(sess, coord=coordinator, daemon=True, start=True)
                    sess.run(shared.publish["op"], {shared.publish["epochs"]: epochs_done})
                elif replicas.sync:  # (no ``:=`` in legacy/: tf_upgrade_v2's parser, pasta, fails on it)
                    chief_step = int(sess.run(ops.global_step))
                    if chief_step != start:
                        raise UserError(f"the chief resumed the run at step {chief_step} and this worker at"
                                        f" {start}: start every task again (the parameter servers too), all with"
                                        f" --fresh or none")
            yield sess, savers
        # not after an error: a Session whose ps died is closed by its __del__ at exit, quickly with GRPC_FAIL_FAST
        # (``deploy``); without it both closes waited for the dead ps (``with sess`` gave up after 30 s, __del__ never)
        sess.close()
    finally:
        coordinator.request_stop()
        if threads:
            # the chief's queue runner may be blocked in a step that waits for a dead worker's gradient: closing the
            # Session cancels it. A daemon thread still inside TensorFlow when Python exits is ended by the
            # interpreter through TensorFlow's C++, which aborted the process ("FATAL: exception not rethrown",
            # exit status -6 after the one-line error: once in five runs of tests/test_replicas.py)
            sess.close()
            for thread in threads:
                thread.join(replicas.timeout)


def replica_config(replicas, precision=None):
    """The Session config of a worker: it talks to the ps tasks only, not to the other workers (which need not have
    started)."""
    config = session_config(precision)
    config.device_filters.extend(["/job:ps", f"/job:{replicas.job}/task:{replicas.index}"])
    return config


def ready(replicas, tasks):
    """Wait for ``tasks`` (``[(job, index)]``) to start, at most ``--peer-timeout``."""
    missing = cluster.wait_reachable(tasks, replicas.tf_config, replicas.timeout)
    if missing:
        raise UserError(f"TF_CONFIG: {missing} did not start within {replicas.timeout} s; start it with the same"
                        f" command and its own task in TF_CONFIG")


def chief_name(replicas):
    return cluster.task_name(*replicas.workers[0], replicas.tf_config)


@contextlib.contextmanager
def peer_errors(replicas):
    """An error of a lost peer (an RPC to a ps task that died, a synchronous step that waited ``--peer-timeout``
    for another worker's gradient) as one line naming the task (``core.cluster``); any other as it is."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
            tf.errors.CancelledError) as err:
        if replicas is None:
            raise
        peer = cluster.lost(err.message, replicas.tf_config) or cluster.unreachable(replicas.tf_config, prefer="ps")
        if peer:
            raise UserError(lost_peer(peer)) from None
        if isinstance(err, tf.errors.DeadlineExceededError):
            raise UserError(f"a synchronous step waited {replicas.timeout} s for the other workers' gradients, and"
                            f" every task answers: is each worker running train.py on this cluster? (--peer-timeout"
                            f" sets the wait)") from None
        raise


def lost_peer(peer):
    return (f"{peer} is not answering (it died, or never started); start every task again (the parameter servers"
            f" too) with the same command (without --fresh): the run resumes from the chief's last checkpoint")


def wait_for_chief(sess, ops, epochs, replicas):
    """Wait until the chief has validated and saved ``epochs`` epochs, or has gone."""
    probed = time.monotonic()
    while sess.run(ops.replicas.chief_epochs) < epochs:
        if time.monotonic() - probed > 2:
            gone = cluster.unreachable(replicas.tf_config, tasks=replicas.workers[:1])
            if gone:
                raise UserError(lost_peer(gone))
            probed = time.monotonic()
        time.sleep(0.1)


def precise_statistics(sess, precise):
    """Precise BN: each BN layer's moving statistics become their mean over ``precise.batches`` batch statistics
    of the current weights (the same batches each time)."""
    sums = None
    for _ in range(precise.batches):
        sess.run(precise.updates)
        values = sess.run(precise.statistics)
        sums = values if sums is None else [a + b for a, b in zip(sums, values)]
    sess.run(precise.assign["op"], dict(zip(precise.assign["values"], [v / precise.batches for v in sums])))


def validate(sess, ops, val_steps):
    """``(loss, accuracy)`` over the validation split; the loss includes the regularization term, as training's."""
    cross_entropy = correct = count = 0
    for _ in range(val_steps):  # the penalty comes with them: one more sess.run would prune the graph again
        a, b, c, penalty = sess.run([*ops.validation, ops.regularization])
        cross_entropy, correct, count = cross_entropy + a, correct + b, count + c
    return float(cross_entropy / count + penalty), float(correct / count)


def _summary(writer, step, **values):
    writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=f"epoch_{k}", simple_value=v)
                                         for k, v in values.items()]), step)
    writer.flush()
