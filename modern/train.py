"""Training the TF2 way: ``compile`` / ``fit`` on flowio's ``tf.data`` pipeline (twin: legacy/train.py).

What each piece of the legacy loop became:

* graph + Session + queue runners -> ``model.fit`` on ``flowio.dataset`` (repeating, epoch-aligned);
* research/slim's recipe (TF1's optimizers on ``exponential_decay`` / ``polynomial_decay`` of the global step,
  label smoothing, trainable scopes, gradient clipping, ``ExponentialMovingAverage``) -> ``modern/optimizers.py``:
  tf_keras's optimizers where they compute TF1's update, small subclasses where they do not (Momentum among
  them: Keras SGD differs after every learning-rate drop), on Keras schedules of ``iterations`` (the global step),
  and the moving averages kept by the optimizer (``SwapAverages`` puts them in the model for validation and
  ``best.h5``); label smoothing -> ``SmoothedCrossEntropy`` (Keras's sparse loss has none);
* precise BN (legacy's second tower at BN decay 0 and its update ops) -> ``PreciseBatchNorm``: the BN layers'
  ``momentum`` set to 0 while the model runs in training mode on the same first training batches;
* the UPDATE_OPS dependency -> nothing: Keras BN updates its moving statistics inside ``fit``;
* the regularization collection -> the layers' ``kernel_regularizer``, which ``fit`` adds to the loss
  (so ``loss`` includes it, as legacy's does);
* Saver (last, best) -> ``ModelCheckpoint`` to ``last.keras`` (model and optimizer) and ``best.h5``
  (by validation accuracy; like legacy's best checkpoint it holds weights keyed by name, and prediction
  rebuilds the model from the registry);
* slim's fine-tuning (``assign_from_checkpoint_fn`` with ``checkpoint_exclude_scopes``) -> ``--init-from``:
  the weights outside the excluded scopes are assigned by name from a legacy, tf_slim or modern checkpoint
  before the first step;
* resuming from ``global_step`` -> ``BackupAndRestore`` (``EpochAlignedBackup``). With a step ``save_freq`` it
  restores the weights, the optimizer and the step, but restarts the data iterator at the first batch: we read
  the step it saved and start the dataset there (``initial_step``), so no batch is seen twice (docs/DESIGN.md §8);
* a Python loop of ``sess.run`` -> ``fit`` with ``steps_per_execution``, so Python is not between every two
  steps;
* FileWriter summaries -> the ``TensorBoard`` callback (tags ``epoch_loss``, ``epoch_accuracy``,
  ``epoch_learning_rate``);
* the Session config's mixed-precision rewrite -> a Keras dtype policy (``mixed_bfloat16``, ``mixed_float16``)
  the model is built under, its ``logits`` head in float32; ``compile`` adds loss scaling for float16;
* device placement -> a distribution strategy (``strategy``): ``MultiWorkerMirroredStrategy`` when
  ``TF_CONFIG`` describes a cluster (every worker runs train.py; the chief writes the run directory, the others
  a scratch copy; the batch size is the global one), ``MirroredStrategy`` when more than one GPU is visible;
* tf.train.Server + replica_device_setter with a ps job (slim's asynchronous replicas) ->
  ``ParameterServerStrategy`` (``parameter_servers``): the chief coordinates ``fit``, the ps and worker tasks
  serve.

Sections, in the same order as the twin: counters, input, devices, model and loss, checkpoints, the loop.
Prediction and weight I/O are the twin modules ``weights.py``.
"""

import errno
import io
import json
import os
import re
import sys
import zipfile

import h5py
import tensorflow as tf
import tf_keras as keras

import flowio
import modern
from core import checkpoints, cluster, files, models, recipe
from core.errors import UserError
from core.run_dir import LOGS, MODERN_BACKUP, MODERN_BEST, MODERN_FINAL, MODERN_LAST
from kerasnets.kit import using
from modern import naming, optimizers
from modern.kit import KIT

# MODERN_LAST (last.keras): the whole model with its optimizer, to continue training or to take elsewhere;
# MODERN_BEST (best.h5): the weights alone, keyed by layer name (Keras's HDF5 format), which load in a second (a
# .keras file of this size takes 10-45 s). Not "best.weights.h5": tf_keras writes that one keyed by class and
# order ("conv2d_17"), which no other program can map to TF1 names. MODERN_FINAL (final.h5): in a multi-worker
# run Keras's callbacks save on the chief only, and reading the weights is collective (every worker must take
# part), so every worker writes the weights it ended with, by name, into its copy of the run.


# --- counters -----------------------------------------------------------------------------------------

def backed_up_step(backup_dir, steps_per_epoch):
    """The global step BackupAndRestore will resume from (0 when there is no backup).

    It saves the epoch and the batch index it had reached (-1 for the batch when it saved at an epoch
    end); the first step still to run follows them.
    """
    path = tf.train.latest_checkpoint(os.path.join(backup_dir, "chief")) or tf.train.latest_checkpoint(backup_dir)
    if path is None:
        return 0
    checkpoints.check_complete(path, "pass --fresh to start the run over")
    reader = tf.train.load_checkpoint(path)
    names = reader.get_variable_to_shape_map()
    epoch = int(reader.get_tensor(next(n for n in names if n.startswith("ckpt_saved_epoch"))))
    batch = int(reader.get_tensor(next(n for n in names if n.startswith("ckpt_saved_batch"))))
    if epoch < 0:
        return 0
    return epoch * steps_per_epoch + batch + 1 if batch >= 0 else (epoch + 1) * steps_per_epoch


# --- input ----------------------------------------------------------------------------------------------

def inputs(run, records_dir, start, coordinated=False):
    """``(train_data, val_data)``: training batches from global step ``start`` on (augmented, seeded, the
    epochs' order fixed, repeating), and the validation batches in order; each sharded for the strategy.

    ``coordinated`` (``ParameterServerStrategy``): the training batches are a ``DatasetCreator`` whose function
    each worker runs, with a seed of its own (``worker_seed``); the validation batches go to the workers through
    Keras's exact evaluation (``compiled_model``)."""
    h = run.hyper
    recipe = run.preprocessing  # what the run recorded, its vgg sides included, not this version's choice

    def training(seed):
        return labelled(flowio.dataset(records_dir, "train", run.image_size, h.batch_size, training=True,
                                       flip=h.flip, seed=seed, repeat=True, drop_remainder=True, initial_step=start,
                                       recipe=recipe))

    def labelled(data):
        if models.aux_scopes(run.model):  # the training model takes the labels too, for its auxiliary loss
            return data.map(lambda images, labels: ((images, labels), labels))
        return data

    val_data = labelled(flowio.dataset(records_dir, "validation", run.image_size, h.batch_size, recipe=recipe))
    if coordinated:
        return keras.utils.experimental.DatasetCreator(lambda context: training(worker_seed())), sharded(val_data)
    return sharded(training(h.seed)), sharded(val_data)


def worker_seed():
    """A seed drawn on the worker that runs the dataset function, by an op seeded by nothing (``seed`` and
    ``seed2`` 0: random; ``tf.random`` would take the global seed, the same on every worker).

    Under ``ParameterServerStrategy`` every worker runs the same dataset function and takes whole batches of it
    in turn: with the run's seed they would all read the same batches in the same order, each batch trained
    once per worker and the rest of the epoch never. Each reads its own order instead, as the strategy's guide
    shuffles without a seed: asynchronous training is not reproducible anyway."""
    return tf.raw_ops.RandomUniformInt(shape=tf.constant([], tf.int32), minval=tf.constant(0, tf.int64),
                                       maxval=tf.constant(2 ** 62, tf.int64), seed=0, seed2=0)


def statistics_data(run, records_dir, batches):
    """The first ``batches`` training batches, un-augmented: what precise BN averages over (legacy's
    ``statistics_input``)."""
    data = flowio.dataset(records_dir, "train", run.image_size, run.hyper.batch_size, drop_remainder=True,
                          recipe=run.preprocessing).take(batches)
    if models.aux_scopes(run.model):
        data = data.map(lambda images, labels: ((images, labels), labels))
    return data


def sharded(dataset):
    """Under MultiWorkerMirroredStrategy each worker keeps its share of every global batch. flowio's epochs come
    from ``Dataset.counter`` and ``flat_map``, where tf.data cannot shard by file, so it shards by data (every
    worker reads all and keeps its part). Without several workers the option does nothing."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# --- devices --------------------------------------------------------------------------------------------

_STRATEGY = []
# tf.distribute's names for them (MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy)
STRATEGY_NAMES = {tf.distribute.MultiWorkerMirroredStrategy: "MultiWorkerMirroredStrategy",
                  tf.distribute.MirroredStrategy: "MirroredStrategy",
                  tf.distribute.ParameterServerStrategy: "ParameterServerStrategy"}


def strategy():
    """The process's distribution strategy, made on the first call.

    With ``TF_CONFIG`` it is ``MultiWorkerMirroredStrategy`` (or the ``ParameterServerStrategy`` that ``deploy``
    made for a cluster with a ps job), which must exist before TensorFlow runs anything:
    train.py asks for it (``deploy``) right after importing TensorFlow. ``strategy().extended.should_checkpoint``
    is True on the one worker that writes the run (the chief; the only one without a cluster).
    """
    if not _STRATEGY:
        if os.environ.get("TF_CONFIG"):
            _STRATEGY.append(multi_worker_strategy())
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            _STRATEGY.append(tf.distribute.MirroredStrategy())
        else:
            _STRATEGY.append(tf.distribute.get_strategy())
    return _STRATEGY[0]


def multi_worker_strategy(peer_timeout=cluster.PEER_TIMEOUT):
    """``MultiWorkerMirroredStrategy`` that does not wait for a missing peer forever.

    In TF 2.21 its constructor starts the coordination service and, unless it was configured before, waits inside
    C++ until every task of ``TF_CONFIG`` has registered: with no deadline, holding the GIL, deaf to SIGTERM. The
    Python health check that once bounded that wait (``CollectiveAllReduceExtended._check_health_initial_timeout``)
    is switched off whenever the coordination service is on (``_enable_check_health = False``). So the service is
    configured here as the strategy would (``standalone``, its leader, the chief and worker jobs) plus a
    registration barrier of ``peer_timeout`` seconds (train.py's ``--peer-timeout``): a task missing at the end
    raises ``DeadlineExceededError`` on every task that came (the leader, the chief or worker 0, after
    ``peer_timeout``; the others when the leader gives up, or ~10 s after they started when the leader itself is
    missing), which names the peers that accept no connection at their ``TF_CONFIG`` address. A peer that dies
    later fails the step's collective (``train`` names it).
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context
    tf_config = cluster.config()
    own = tf_config.get("task", {}).get("type")
    if own not in ("chief", "worker") or own not in tf_config.get("cluster", {}):
        raise ValueError(f"task type {own!r}: train.py is a chief or a worker of the cluster's (an evaluator or"
                         f" a parameter server is not)")
    spec = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        cluster_register_timeout_in_ms=peer_timeout * 1000,
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
                          for job in ("chief", "worker") if job in spec.jobs])
    context.context().coordination_service.cluster_register_with_barrier = True
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError):
        raise UserError(f"TF_CONFIG: {cluster.unreachable() or 'a peer'} did not join within {peer_timeout} s;"
                        f" start it with the same command and its own task in TF_CONFIG, then this one again"
                        ) from None


def deploy(num_clones=1, clone_on_cpu=False, peer_timeout=cluster.PEER_TIMEOUT, replicas=None):
    """Make the process's strategy (the half protocol's ``deploy``, ``core.halves``); return whether this process
    writes the run (the chief of a ``TF_CONFIG`` cluster, or the only process).

    ``num_clones`` > 1 is slim's ``--num_clones`` in TF2: ``MirroredStrategy`` over that many local devices, GPUs
    ``0..N-1``, or with ``clone_on_cpu`` as many logical devices the CPU is split into (their configuration must
    precede TensorFlow's first op, which is why this comes first). Each replica computes its share of the global
    batch, the gradients are summed across replicas and BN's moving statistics are each replica's own, read as
    their mean (tests/test_clones.py). ``peer_timeout``: ``multi_worker_strategy``'s. A ps job in ``TF_CONFIG``:
    ``parameter_servers``. slim's replica flags (``replicas``) are legacy's and refused.
    """
    if replicas is not None and replicas.given():
        raise UserError(f"{' '.join(replicas.given())}: slim's replica flags are the legacy half's; modern reads"
                        f" its cluster from TF_CONFIG alone (with a ps job: ParameterServerStrategy, asynchronous)")
    tf_config = cluster.config()
    if "ps" in tf_config.get("cluster", {}):
        if num_clones > 1:
            raise UserError("--num-clones with parameter servers: each worker of ParameterServerStrategy already"
                            " trains on all of its GPUs; leave --num-clones at 1")
        return parameter_servers(tf_config, peer_timeout)
    if num_clones > 1:
        if os.environ.get("TF_CONFIG"):
            raise UserError("--num-clones with TF_CONFIG: each worker of MultiWorkerMirroredStrategy already trains"
                            " on all of its GPUs; leave --num-clones at 1")
        if clone_on_cpu:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_clones)
            devices = [f"/cpu:{i}" for i in range(num_clones)]
        else:
            gpus = len(tf.config.list_physical_devices("GPU"))
            if gpus < num_clones:
                raise UserError(f"--num-clones {num_clones} puts replica i on GPU i and this machine has {gpus}"
                                f" GPU(s); pass --clone-on-cpu to split the CPU into {num_clones} devices")
            devices = [f"/gpu:{i}" for i in range(num_clones)]
        _STRATEGY.append(tf.distribute.MirroredStrategy(devices))
    try:
        if os.environ.get("TF_CONFIG"):
            _STRATEGY.append(multi_worker_strategy(peer_timeout))
        return strategy().extended.should_checkpoint
    except ValueError as err:
        raise UserError(f"TF_CONFIG: {err}") from None


def parameter_servers(tf_config, peer_timeout=cluster.PEER_TIMEOUT):
    """research/slim's parameter servers in TF2: ``ParameterServerStrategy``, whose ``ClusterCoordinator`` (made by
    ``fit``) is the ``chief`` task of ``TF_CONFIG``; return True there.

    The ps and worker tasks start a ``tf.distribute.Server`` and serve until they are stopped (this never returns
    on them): the variables live on the ps tasks, and the chief sends each worker whole steps to run on batches
    of its own dataset, asynchronously (a worker's gradient updates the variables on its own, as slim's replicas
    without ``--sync_replicas``). A worker that dies loses only the steps it was running: the coordinator runs
    them on another worker, and takes the worker back when it serves again; a ps that dies stops the chief
    (``train``). ``GRPC_FAIL_FAST=use_caller``, as the strategy's guide sets it: the chief's RPCs to a dead task
    fail at once instead of waiting for it. The chief waits up to ``peer_timeout`` seconds for every task to
    listen before it connects.
    """
    jobs, own = tf_config["cluster"], tf_config.get("task", {})
    job, index = own.get("type"), own.get("index", 0)
    if len(jobs.get("chief", [])) != 1 or not jobs.get("worker"):
        raise UserError("TF_CONFIG: ParameterServerStrategy needs one chief task (the coordinator, which runs fit and"
                        " writes the run) and a worker job, besides the ps job")
    if set(jobs) - {"chief", "worker", "ps"}:
        raise UserError(f"TF_CONFIG: a {', '.join(sorted(set(jobs) - {'chief', 'worker', 'ps'}))} job: a cluster with"
                        f" parameter servers here has the chief, worker and ps jobs alone")
    if job not in jobs or not 0 <= index < len(jobs[job]):
        raise UserError(f"TF_CONFIG: task {job} {index} is not in the cluster ({', '.join(jobs)})")
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    name = cluster.task_name(job, index, tf_config)
    if job != "chief":
        try:
            server = tf.distribute.Server(tf.train.ClusterSpec(jobs), job_name=job, task_index=index,
                                          protocol="grpc", start=True)
        except tf.errors.OpError as err:
            raise UserError(f"TF_CONFIG: {name} could not serve there: {err.message.splitlines()[0]}") from None
        work = "its share of the variables" if job == "ps" else "the chief's steps"
        print(f"train: {name} serves {work} until it is stopped", flush=True)
        server.join()
    missing = cluster.wait_reachable(cluster.peers(tf_config), tf_config, peer_timeout)
    if missing:
        raise UserError(f"TF_CONFIG: {missing} did not start within {peer_timeout} s; start each with the same"
                        f" command and its own task in TF_CONFIG, then this one again")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    try:
        _STRATEGY.append(tf.distribute.ParameterServerStrategy(resolver))
    except tf.errors.UnavailableError:  # a task that listened a moment ago and is gone
        raise UserError(f"TF_CONFIG: {cluster.unreachable() or 'a task'} stopped answering before training began;"
                        f" start it again with the same command, then this one") from None
    return True


# --- model and loss ----------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="modern")
class AuxiliaryLoss(keras.layers.Layer):
    """research/slim's train_image_classifier adds the auxiliary head's cross-entropy (``end_points['AuxLogits']``)
    to the loss at a weight (0.4, the model table's ``aux_loss_weight``); legacy's ``training_graph`` does the
    same. Keras would need a second output, a second label and renamed metrics (``Logits__SpatialSqueeze_accuracy``)
    for it; this layer instead takes
    ``[logits, aux_logits, labels]``, adds ``weight * cross-entropy(labels, aux_logits)`` as a layer loss in training
    (so ``fit``'s loss holds it, as the regularization), and passes the main logits through."""

    def __init__(self, weight, label_smoothing=0.0, **kwargs):
        super().__init__(**kwargs)
        self.weight, self.label_smoothing = weight, label_smoothing

    def call(self, inputs, training=None):
        logits, aux_logits, labels = inputs
        if training:
            loss = SmoothedCrossEntropy(aux_logits.shape[-1], self.label_smoothing, reduction="none")
            self.add_loss(self.weight * tf.reduce_mean(loss(labels, tf.cast(aux_logits, tf.float32))))
        return logits

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "label_smoothing": self.label_smoothing}


def with_auxiliary_loss(model, weight, label_smoothing=0.0):
    """``model`` (returning ``[logits, aux_logits]``) as a model of ``[images, labels]`` returning the logits, its
    auxiliary loss at ``weight`` added in training; the same name (the checkpoints' scope) and the same layers."""
    labels = keras.Input(shape=(), dtype="int64", name="labels")
    logits, aux_logits = model.outputs
    out = AuxiliaryLoss(weight, label_smoothing=label_smoothing, name="aux_loss", dtype="float32")(
        [logits, aux_logits, labels])
    return keras.Model([model.inputs[0], labels], out, name=model.name)


@keras.saving.register_keras_serializable(package="modern")
class SmoothedCrossEntropy(keras.losses.Loss):
    """The cross-entropy of sparse labels on logits, smoothed as slim's ``softmax_cross_entropy(onehot, logits,
    label_smoothing=s)``: targets ``(1 - s) * onehot + s / classes``. Keras's sparse loss has no smoothing, and
    its categorical one wants one-hot labels from the dataset; at ``s = 0`` it is the sparse cross-entropy."""

    def __init__(self, num_classes, label_smoothing, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.label_smoothing = num_classes, label_smoothing

    def call(self, y_true, y_pred):
        if not self.label_smoothing:
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        onehot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), self.num_classes)
        return keras.losses.categorical_crossentropy(onehot, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "label_smoothing": self.label_smoothing}


def compiled_model(run, decay_steps, steps_per_execution=1):
    """The model of ``run``, compiled with its recipe (``modern.optimizers``: the optimizer on its schedule of
    ``decay_steps`` global steps per decay, restricted to ``--trainable-scopes``, keeping the moving averages of
    every weight with ``--moving-average-decay``, its state built at once), the (label-smoothed) cross-entropy on
    logits (``fit`` adds the layers' regularization losses, and inception_v3's auxiliary loss), accuracy.

    Under ``ParameterServerStrategy`` (where each worker would take the next validation batch of its own
    iterator, some images counted twice and others never) validation is Keras's "exact evaluation"
    (``pss_evaluation_shards``; ignored under other strategies), each shard of the validation split evaluated
    whole by one worker, so that every image counts once. tf.data shards it by file whatever the dataset's
    sharding option says, and fails when there are fewer files than shards (docs/DESIGN.md §8): one shard, the
    whole split on one worker."""
    h = run.hyper
    aux = bool(models.aux_scopes(run.model))
    model = modern.build(run.model, run.num_classes, input_shape=(run.image_size, run.image_size, 3),
                         weight_decay=h.weight_decay, batch_norm_decay=h.batch_norm_decay, precision=h.precision,
                         aux_logits=aux)
    if aux:
        model = with_auxiliary_loss(model, models.spec(run.model).aux_loss_weight, h.label_smoothing)
    optimizer = optimizers.optimizer(h, decay_steps)
    trained = trained_weights(model, h.trainable_scopes)
    optimizer.restrict(trained)
    if h.moving_average_decay:  # slim averages slim.get_model_variables(): BN's moving statistics too
        optimizer.average(model.weights, h.moving_average_decay)
    model.compile(optimizer=optimizer, loss=SmoothedCrossEntropy(run.num_classes, h.label_smoothing),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  steps_per_execution=steps_per_execution,
                  pss_evaluation_shards=1)
    optimizer.build(trained)  # its slots and averages now: BackupAndRestore and continued() restore into them
    return model


def trained_weights(model, scopes):
    """legacy's ``trained_variables``: the trainable weights whose TF1 name matches one of ``scopes`` at its start
    (``re.match``, as ``get_collection(TRAINABLE_VARIABLES, scope)``), or all of them. BN layers outside the
    scopes stay in training mode and keep updating their moving statistics, as under slim (Keras's
    ``trainable=False`` would switch them to inference mode)."""
    if not scopes:
        return model.trainable_weights
    named = [(name, w) for name, w in naming.weight_names(model).items() if w.trainable]
    trained = [w for scope in scopes for name, w in named if re.match(scope, name)]
    if not trained:
        raise UserError(f"--trainable-scopes {','.join(scopes)}: no trainable variable there (they are named like"
                        f" {max(name for name, _ in named)})")
    return trained


def recipe_optimizer(model):
    """The run's own optimizer inside ``model`` (under float16 Keras wraps it in a ``LossScaleOptimizer``)."""
    return getattr(model.optimizer, "inner_optimizer", model.optimizer)


def training_model(run, start, steps_per_epoch, decay_steps, executed, init_from):
    """``(model, initial_epoch, start)`` under the strategy: a new compiled model, which takes a complete run's
    weights and optimizer state from last.keras when it is continued with a larger --epochs, its first weights
    from ``init_from`` when it starts at step 0, or else is restored by BackupAndRestore when there is a backup."""
    done_epochs = len(run.epochs)
    with strategy().scope():
        model = compiled_model(run, decay_steps, executed)
        if start == 0 and done_epochs and os.path.exists(run.path(MODERN_LAST)):
            continued(model, run.path(MODERN_LAST), run.hyper, decay_steps)
            return model, done_epochs, run.resume_at(done_epochs * steps_per_epoch)
        if start == 0 and init_from:
            naming.initialise(model, run, init_from)
    return model, 0, start  # BackupAndRestore overrides the initial epoch when it restores a backup


def continued(model, path, hyper, decay_steps):
    """Load last.keras's weights and optimizer state into ``model`` (compiled and built by ``compiled_model``).

    The optimizer's variables are read from the file in their order (tf_keras would load them only into an
    optimizer it built itself, whose order has no moving averages). A run written before the recipe flags used
    Keras ``SGD(momentum)``, whose slot is ``v`` in ``v = m*v - lr*g; w += v``; TF1's Momentum keeps
    ``a`` in ``a = m*a + g; w -= lr*a``, so ``a = -v / lr`` with the rate of the next step makes that step the one
    SGD would have taken.
    """
    with zipfile.ZipFile(path) as archive:
        saved_optimizer = json.loads(archive.read("config.json"))["compile_config"]["optimizer"]
        with using(KIT):  # a subclassed model's layers are made by the kit's names
            weights = keras.models.load_model(path, compile=False).get_weights()
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
            group = f["optimizer/vars"]
            state = [group[str(i)][()] for i in range(len(group))]
    model.set_weights(weights)
    optimizer = recipe_optimizer(model)
    if saved_optimizer["class_name"] == "SGD":  # iterations, then one slot per trainable weight
        lr = recipe.learning_rate(hyper, int(state[0]), decay_steps)
        state = [state[0]] + [-v / lr for v in state[1:]]
    if len(state) != len(optimizer.variables):
        raise UserError(f"{path}: its optimizer state does not fit this run's ({len(state)} values, not"
                        f" {len(optimizer.variables)}); pass --fresh to start the run over")
    for variable, value in zip(optimizer.variables, state):
        variable.assign(value)


# --- checkpoints ----------------------------------------------------------------------------------------

class AtomicCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that writes under a temporary name and renames, as Saver does: Keras writes
    ``last.keras`` / ``best.h5`` in place, so a kill or a full disk mid-save left a truncated file that
    prediction then failed on. The temporary name (``core.files.atomic``) keeps the suffix, which tells Keras the
    format."""

    def _save_handler(self, filepath):
        with files.atomic(filepath) as tmp:
            super()._save_handler(tmp)


class EpochAlignedBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` every ``save_freq`` executions inside an epoch, and at the epoch's end only after the
    epoch's metrics are in run.json: put it after ``RecordEpochs`` in the callbacks.

    Keras's own saves after the epoch's last batch, before validation: killed between the two, the rerun started
    at the next epoch and the finished epoch's metrics were never written (legacy had the same race between its
    Saver and run.json; tests/test_faults.py's kills found both, and the batch number below).
    """

    def __init__(self, backup_dir, save_freq, steps_per_epoch):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=True)
        self.steps_per_epoch = steps_per_epoch

    def on_train_batch_end(self, batch, logs=None):
        # tf_keras saves the batch it was told at on_train_batch_begin, not the one it is given here: with
        # steps_per_execution N that is the first of the N steps just run, and the resumed run repeated N - 1
        # steps (and, its counters off, diverged). Say the last one.
        self._training_state._ckpt_saved_batch.assign(batch)
        if batch + 1 < self.steps_per_epoch:
            super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._batches_count = 0  # saves fall on the same batches of every epoch
        self._training_state._ckpt_saved_batch.assign(self.steps_per_epoch - 1)
        self._backup(epoch=epoch)


class SwapAverages(keras.callbacks.Callback):
    """legacy's ``swap_averages`` op: the moving averages go into the model when validation begins and the raw
    weights come back at the epoch's end, after the callbacks before this one (``best.h5``) have saved."""

    swapped = False

    def on_test_begin(self, logs=None):
        recipe_optimizer(self.model).swap_averages()
        self.swapped = True

    def on_epoch_end(self, epoch, logs=None):
        if self.swapped:
            recipe_optimizer(self.model).swap_averages()
            self.swapped = False


class PreciseBatchNorm(keras.callbacks.Callback):
    """legacy's ``precise_statistics``: before validation (after ``SwapAverages``), each BN layer's moving
    statistics become their mean over the batch statistics of ``data`` under the current weights. With
    ``momentum`` 0, Keras's fused BN sets them to the batch's (Bessel-corrected variance, as slim's fused BN)."""

    def __init__(self, data):
        super().__init__()
        self.data, self.forward = data, None

    def on_test_begin(self, logs=None):
        layers = [layer for layer in self.model.submodules if isinstance(layer, keras.layers.BatchNormalization)]
        if not layers:
            return
        # traced once, with momentum 0 (read when tracing); fit's own train function keeps its traced momentum
        self.forward = self.forward or tf.function(lambda x: self.model(x, training=True))
        recipe.precise_batch_norm(layers, self.forward, (inputs for inputs, _ in self.data))


class LostWorkers(keras.callbacks.Callback):
    """legacy's asynchronous chief at each epoch's end: which workers ``ParameterServerStrategy``'s coordinator
    trains on without (``core.cluster.report_lost``), and which are back."""

    def __init__(self):
        super().__init__()
        self.tf_config, self.lost = cluster.config(), set()
        self.workers = [("worker", i) for i in range(len(self.tf_config["cluster"]["worker"]))]

    def on_epoch_end(self, epoch, logs=None):
        self.lost = cluster.report_lost(self.workers, self.tf_config, self.lost)


def callbacks(run, steps_per_epoch, executed, records_dir, done):
    """Saver (last, best), FileWriter, run.json and BackupAndRestore as callbacks, in the order they must run;
    the moving averages swapped in and the BN statistics re-estimated before validation; ``done``: the epochs
    complete before this attempt's first step (not ``fit``'s ``initial_epoch``, which BackupAndRestore sets).

    Under ``ParameterServerStrategy`` ``BackupAndRestore`` skips its batch hooks (tf_keras), so the backup is at
    each epoch's end alone (``--save-every`` does not apply), and ``LostWorkers`` reports the workers."""
    h = run.hyper
    ps = coordinated(strategy())
    averaged = [SwapAverages()] if h.moving_average_decay else []
    precise = [PreciseBatchNorm(statistics_data(run, records_dir, min(h.precise_bn_batches, steps_per_epoch)))
               ] if h.batch_norm_statistics == "precise" else []
    return [
        AtomicCheckpoint(run.path(MODERN_BEST), monitor="val_accuracy", mode="max", save_best_only=True,
                         save_weights_only=True, initial_value_threshold=run.best_to_beat(done)),
        *averaged,  # validation and best.h5 above see the averages; last.keras and the backup the raw weights
        *precise,
        AtomicCheckpoint(run.path(MODERN_LAST)),
        keras.callbacks.TensorBoard(run.path(LOGS), write_graph=False),
        RecordEpochs(run),
        EpochAlignedBackup(backup_folder(run), "epoch" if ps else h.save_every // executed, steps_per_epoch),
        *([LostWorkers()] if ps else []),
    ]


# --- the loop ------------------------------------------------------------------------------------------

def train(run, records_dir, progress=True, init_from=None):
    """Train (or resume) ``run`` (its run.json record, updated as epochs end) on the records in ``records_dir``.

    ``init_from`` (``{"checkpoint": path, "exclude_scopes": [...]}``) sets the first weights of a run that
    starts at step 0.
    """
    h = run.hyper
    steps_per_epoch, val_steps = flowio.epoch_steps(records_dir, h.batch_size)
    backup = backup_folder(run)
    start = run.resume_at(backed_up_step(backup, steps_per_epoch))
    keras.utils.set_random_seed(h.seed)
    executed = steps_per_execution(h.save_every, steps_per_epoch)
    decay_steps = recipe.decay_steps(h, flowio.num_examples(records_dir, "train"))
    distribute = strategy()
    ps = coordinated(distribute)
    model, initial_epoch, start = training_model(run, start, steps_per_epoch, decay_steps, executed, init_from)
    train_data, val_data = inputs(run, records_dir, start, coordinated=ps)
    run.distribute = {"strategy": STRATEGY_NAMES.get(type(distribute), "default"),
                      "replicas": distribute.num_replicas_in_sync}
    multi_worker = isinstance(distribute, tf.distribute.MultiWorkerMirroredStrategy)
    try:
        # fit refuses verbose=1 under ParameterServerStrategy ("for performance reasons": a progress bar would
        # wait for every step's result): one line an epoch
        model.fit(train_data, epochs=h.epochs, steps_per_epoch=steps_per_epoch, initial_epoch=initial_epoch,
                  validation_data=val_data, validation_steps=None if ps else val_steps,
                  callbacks=callbacks(run, steps_per_epoch, executed, records_dir, start // steps_per_epoch),
                  verbose=1 if progress and sys.stdout.isatty() and not ps else 2)
    except PEER_ERRORS as err:
        if ps:  # the coordinator reruns a lost worker's steps itself: what fails fit is a parameter server
            peer = cluster.unreachable(tasks=[("ps", i) for i in range(len(cluster.config()["cluster"]["ps"]))])
            advice = ("every step reads and updates the variables on the parameter servers; start it again with the"
                      " same command, then the chief (without --fresh): the run resumes from the last epoch's backup")
        else:
            peer = (cluster.lost(str(err)) or cluster.unreachable()) if multi_worker else ""
            advice = ("a synchronous step needs every worker; start every worker again with the same command (without"
                      " --fresh): the run resumes from the chief's last backup")
        if not peer:  # no peer named and every peer answers: a fault of this process's own
            raise
        raise UserError(f"{peer} stopped answering, and {advice}") from None
    if multi_worker:
        model.save_weights(run.path(MODERN_FINAL))
    remove_empty(backup)
    return model


def remove_empty(backup):
    """Remove the ``backup`` folder a finished ``fit`` leaves empty. BackupAndRestore removes what it wrote: the
    chief its ``chief`` folder (at the end of ``fit``), each other worker of a cluster its ``workertemp_<i>`` (after
    each backup), in no set order between the workers; so each worker tries, and the last one done removes it."""
    try:
        os.rmdir(backup)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTEMPTY):  # gone already, or a worker's backup still in it
            raise


# What a collective or an RPC raises when a peer dies or stops answering: a reset connection (Unavailable), the
# coordination service's failed heartbeat (Unavailable, Internal), a timeout (DeadlineExceeded), a restarted
# peer (FailedPrecondition, Aborted), an aborted step's other ops (Cancelled); ``train`` names the peer the error
# names, else one that accepts no connection, and raises the error as it is when there is none
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.InternalError, tf.errors.DeadlineExceededError,
               tf.errors.FailedPreconditionError, tf.errors.AbortedError, tf.errors.CancelledError)


def coordinated(distribute):
    """Whether ``fit`` runs under ``distribute`` through a ``ClusterCoordinator`` (``ParameterServerStrategy``)."""
    return isinstance(distribute, tf.distribute.ParameterServerStrategy)


def backup_folder(run):
    """BackupAndRestore's folder: the chief's, on every worker of a cluster (Keras's multi-worker backup is
    written by the chief and read by all, so a restarted cluster resumes where the chief saved: the run folder
    must be on storage every worker reads, as the records are)."""
    return os.path.join(run.chief_folder or run.folder, MODERN_BACKUP)


class RecordEpochs(keras.callbacks.Callback):
    """Writes each epoch's metrics into run.json (and curves.png), as legacy's loop does by hand."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        lr = self.model.optimizer.learning_rate
        step = int(self.model.optimizer.iterations.numpy())
        # the schedule, or (under a multi-worker strategy) the variable holding its last value
        metrics = {"epoch": epoch + 1, "step": step,
                   "lr": float(keras.backend.get_value(lr(step - 1) if callable(lr) else lr)),
                   **{k: float(logs[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}}
        self.run.record_epoch(metrics)


def steps_per_execution(save_every, steps_per_epoch):
    """Training steps ``fit`` runs per call into its ``tf.function`` (``compile(steps_per_execution=...)``).

    Plain ``fit`` returns to Python after every step to run the callbacks and sync the metrics; several steps
    per call save that (measured here: 1% on jianshu_resnet_50 at 224x224, 3% at 32x32; docs/DESIGN.md §8's 30% turned
    out to be the tf.data wait that ``flowio.reader.NO_AUTOTUNE_THREAD`` removes). Batch callbacks then see one
    call per execution, so the value divides ``--save-every`` and BackupAndRestore still saves every ``save_every``
    steps (``fit`` cuts the last execution of an epoch short by itself). A multi-step function costs one more
    trace of the training step (autograph traces a loop's body once more to learn what it returns: seconds
    for a big network), so an epoch of few steps keeps one step per call: several only where an epoch holds at
    least four calls.
    """
    return next(n for n in (8, 4, 2, 1) if save_every % n == 0 and (n == 1 or 4 * n <= steps_per_epoch))
