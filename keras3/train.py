"""Training in Keras 3: ``compile`` / ``fit`` on flowio's ``tf.data`` pipeline, on the TensorFlow or the JAX backend
(it mirrors modern/train.py, tf_keras's, section by section; docs/MIGRATION.md's "tf_keras (Keras 2) -> Keras 3"
says what changed and why).

What each piece of modern's loop became:

* ``model.fit`` on ``flowio.dataset`` -> the same: Keras 3 takes a ``tf.data.Dataset`` on every backend (on JAX
  each batch becomes NumPy);
* the recipe's optimizers -> ``keras3/optimizers.py`` (TF1's update, written as Keras 3's own optimizers, so one
  class runs in a ``tf.function`` and in JAX's ``stateless_apply``);
* ``--trainable-scopes`` -> the other weights' ``variable.trainable = False`` (Keras 3's variables carry the flag;
  the layers, BN included, stay in training mode, as slim's);
* the optimizer's moving averages (tf_keras: ``optimizer.average``) -> ``Averages``, the train step's: Keras 3's
  ``use_ema`` has no warm-up and sees the trainable weights only, and on JAX BN's moving statistics are not the
  optimizer's state but the step's (``stateless_call`` returns them). ``SlimModel.train_step`` applies TF1's
  ``ExponentialMovingAverage`` after the update, on each backend in its own signature; the shadows are optimizer
  variables, so they are saved, restored and threaded through JAX's state with the slots;
* ``ModelCheckpoint(best.h5)`` -> ``SaveBest``: Keras 3 writes no HDF5 keyed by layer name, so the best epoch's
  weights go out by TF1 name (``core.checkpoints.write_h5``, which tf_keras and every half read);
* ``BackupAndRestore`` -> ``StepBackup``: Keras 3's restores the epoch only (its metadata has the batch, but
  ``on_train_begin`` sets just ``_initial_epoch``), so a run killed mid-epoch saw the epoch's first batches
  twice. ``StepBackup`` writes the weights and the optimizer (its ``iterations`` is the global step) every
  ``--save-every`` steps, in one atomic file, and ``train`` resumes at that step: the rest of the interrupted
  epoch in one ``fit``, the other epochs in another;
* label smoothing -> one-hot labels and Keras 3's ``CategoricalCrossentropy(label_smoothing)``, as slim's
  ``softmax_cross_entropy``; the auxiliary loss -> ``SlimModel.compute_loss`` (no layer, no labels input);
* precise BN, TensorBoard and run.json: as modern's.

Sections, in modern/train.py's order: counters, input, devices, model and loss, checkpoints, the loop.
"""

import os
import re
import sys

import keras
from keras import ops

import flowio
import keras3
from core import checkpoints, files, halves, models, recipe
from core.errors import UserError
from core.run_dir import KERAS3_BACKUP, KERAS3_BEST, KERAS3_LAST, LOGS
from keras3 import naming, optimizers

register = keras.saving.register_keras_serializable(package="keras3")


# --- counters -----------------------------------------------------------------------------------------

def backed_up_step(model, path):
    """Load the backup at ``path`` into ``model`` (compiled and built) and return its global step (0: none)."""
    if not os.path.exists(path):
        return 0
    model.load_weights(path)
    return int(ops.convert_to_numpy(model.optimizer.iterations))


# --- input ----------------------------------------------------------------------------------------------

def inputs(run, records_dir, start, split="train"):
    """Training batches from global step ``start`` on (augmented, seeded, epoch-aligned, repeating), or with
    ``split="validation"`` the validation batches in order; labels one-hot (``one_hot``)."""
    h = run.hyper
    if split == "train":
        data = flowio.dataset(records_dir, "train", run.image_size, h.batch_size, training=True, flip=h.flip,
                              seed=h.seed, repeat=True, drop_remainder=True, initial_step=start,
                              recipe=run.preprocessing)
    else:
        data = flowio.dataset(records_dir, split, run.image_size, h.batch_size, recipe=run.preprocessing)
    return one_hot(data, run.num_classes)


def statistics_data(run, records_dir, batches):
    """The first ``batches`` training batches, un-augmented: what precise BN averages over."""
    return flowio.dataset(records_dir, "train", run.image_size, run.hyper.batch_size, drop_remainder=True,
                          recipe=run.preprocessing).take(batches)


def one_hot(data, num_classes):
    """slim's ``one_hot_encoding`` of the labels, as train_image_classifier does before its loss: Keras 3's
    ``CategoricalCrossentropy`` then takes ``label_smoothing`` as slim's ``softmax_cross_entropy`` does (its
    sparse loss has none). flowio's batches are ``tf.data`` on every backend."""
    import tensorflow as tf
    return data.map(lambda images, labels: (images, tf.one_hot(labels, num_classes)))


# --- devices --------------------------------------------------------------------------------------------

def deploy(num_clones=1, clone_on_cpu=False, peer_timeout=None, replicas=None):
    """Always True: keras3 trains in one process on one device (the backend's, a GPU when there is one); a
    ``TF_CONFIG`` cluster (so ``peer_timeout``, a cluster's), slim's replica flags and ``--num-clones`` are
    refused, the modern half's (tf.distribute) and the legacy half's."""
    if num_clones > 1:
        raise UserError("--num-clones: keras3 trains on one device here (Keras 3's multi-device training is"
                        " keras.distribution on JAX, not ported); --impl legacy or modern deploys clones")
    halves.no_replicas("keras3", replicas)
    return halves.one_machine("keras3")


# --- model and loss ----------------------------------------------------------------------------------

class Averages:
    """TF1's ``ExponentialMovingAverage(decay, num_updates=global_step)`` of ``weights`` (slim averages
    ``get_model_variables()``: BN's moving statistics too), its shadows optimizer variables of ``optimizer``
    (built) that start at the weights' values, as TF1's slots start at the variables' initial values.

    ``assign_after_step`` is the TensorFlow step's (variables in a ``tf.function``); ``updated`` the JAX step's
    (values in, values out). Both run after the update, at the step just counted (``optimizers.average_decay``).
    """

    def __init__(self, optimizer, weights, decay):
        self.optimizer, self.weights, self.decay = optimizer, list(weights), decay
        self.shadows = []
        for weight in self.weights:
            shadow = optimizer.add_variable_from_reference(weight, "average")
            shadow.assign(ops.convert_to_numpy(weight.value))  # a copy: on JAX one array in two variables
            self.shadows.append(shadow)                         # is donated twice by the jitted step

    def assign_after_step(self):
        decay = optimizers.average_decay(self.decay, self.optimizer.iterations)
        for shadow, weight in zip(self.shadows, self.weights):
            shadow.assign(optimizers.moving_average(shadow.value, weight.value, decay))

    def updated(self, model, trainable, non_trainable, optimizer_values):
        """``optimizer_values`` with the shadows moved towards the new ``trainable`` / ``non_trainable`` values
        (the lists JAX's train step holds, in the order of the model's and the optimizer's variables)."""
        position = {id(v): i for i, v in enumerate(model.optimizer.variables)}
        values = {id(v): value for v, value in zip(model.trainable_variables, trainable)}
        values.update({id(v): value for v, value in zip(model.non_trainable_variables, non_trainable)})
        decay = optimizers.average_decay(self.decay, optimizer_values[position[id(model.optimizer.iterations)]])
        optimizer_values = list(optimizer_values)
        for shadow, weight in zip(self.shadows, self.weights):
            at = position[id(shadow)]
            optimizer_values[at] = optimizers.moving_average(optimizer_values[at], values[id(weight)], decay)
        return optimizer_values

    def swap(self):
        """Exchange the weights' values with the averages' (legacy's ``swap_averages``; twice: back again)."""
        for shadow, weight in zip(self.shadows, self.weights):
            value = ops.convert_to_numpy(weight.value)
            weight.assign(ops.convert_to_numpy(shadow.value))
            shadow.assign(value)


@register
class SlimModel(keras.Model):
    """The functional model ``fit`` trains, around the net: a train step that applies the moving averages
    (``averages``, None without ``--moving-average-decay``) after Keras 3's own step, in the backend's signature
    (``train_step(data)`` on TensorFlow, ``train_step(state, data)`` on JAX); and, for a net with an auxiliary head
    (outputs ``[logits, aux_logits]``), research/slim's auxiliary loss: ``aux_loss_weight`` times the compiled
    loss of the auxiliary logits, added in training (``compute_loss``, the hook Keras 3 calls on every backend),
    the metrics on the main logits. tf_keras's model needed a layer adding it, and the labels as an input."""

    averages = None
    aux_loss_weight = 0.0

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            state, data = args
            logs, (trainable, non_trainable, optimizer_values, metrics) = super().train_step(state, data)
            if self.averages is not None:
                optimizer_values = self.averages.updated(self, trainable, non_trainable, optimizer_values)
            return logs, (trainable, non_trainable, optimizer_values, metrics)
        logs = super().train_step(*args)
        if self.averages is not None:
            self.averages.assign_after_step()
        return logs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not self.aux_loss_weight:
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        logits, aux_logits = y_pred
        loss = super().compute_loss(x, y, logits, sample_weight, training)
        if training:
            loss = loss + self.aux_loss_weight * self.loss(y, ops.cast(aux_logits, "float32"))
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y, y_pred[0] if self.aux_loss_weight else y_pred, sample_weight)


def compiled_model(run, decay_steps):
    """The run's model as a ``SlimModel``, compiled with its recipe: the optimizer on its schedule, built on the
    weights ``--trainable-scopes`` trains (the others marked not trainable), the moving averages of every weight
    with ``--moving-average-decay``, the (label-smoothed) cross-entropy on logits of one-hot labels (``fit`` adds
    the layers' regularization losses, and inception_v3's auxiliary loss), accuracy."""
    h = run.hyper
    aux = bool(models.aux_scopes(run.model))
    net = keras3.build(run.model, run.num_classes, input_shape=(run.image_size, run.image_size, 3),
                       weight_decay=h.weight_decay, batch_norm_decay=h.batch_norm_decay, precision=h.precision,
                       aux_logits=aux)
    images = keras.Input(shape=(run.image_size, run.image_size, 3), name="images")
    model = SlimModel(images, net(images), name=net.name)  # the net as one layer: functional and subclassed alike
    if aux:
        model.aux_loss_weight = models.spec(run.model).aux_loss_weight
    freeze_outside(model, h.trainable_scopes)
    optimizer = optimizers.optimizer(h, decay_steps)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=h.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    optimizer.build(model.trainable_variables)  # its slots now: the backup and last.keras load into them
    if h.moving_average_decay:
        model.averages = Averages(optimizer, model.weights, h.moving_average_decay)
    return model


def freeze_outside(model, scopes):
    """legacy's ``trained_variables``: only the weights whose TF1 name matches one of ``scopes`` at its start
    (``re.match``) stay trainable; the layers stay in training mode (BN keeps updating its statistics)."""
    if not scopes:
        return
    named = [(name, w) for name, w in naming.weight_names(model).items() if w.trainable]
    trained = {id(w) for scope in scopes for name, w in named if re.match(scope, name)}
    if not trained:
        raise UserError(f"--trainable-scopes {','.join(scopes)}: no trainable variable there (they are named like"
                        f" {max(name for name, _ in named)})")
    for _, weight in named:
        weight.trainable = id(weight) in trained


def named_values(model):
    """``{TF1 name: array}`` of the model's weights (an auxiliary loss layer holds none)."""
    return {name: ops.convert_to_numpy(w.value) for name, w in naming.weight_names(model).items()}


# --- checkpoints ----------------------------------------------------------------------------------------

class SaveBest(keras.callbacks.Callback):
    """best.h5: the weights of the epoch with the highest validation accuracy so far (above ``best``), by TF1
    name, written atomically; put it before ``SwapAverages``'s epoch end, so it saves what validation saw."""

    def __init__(self, path, best):
        super().__init__()
        self.path, self.best = path, best

    def on_epoch_end(self, epoch, logs=None):
        if self.best is None or logs["val_accuracy"] > self.best:
            self.best = logs["val_accuracy"]
            with files.atomic(self.path) as tmp:
                checkpoints.write_h5(tmp, named_values(self.model))


class SwapAverages(keras.callbacks.Callback):
    """The moving averages go into the model when validation begins; the raw weights come back at the epoch's
    end, after the callbacks before this one (``SaveBest``) have saved."""

    swapped = False

    def on_test_begin(self, logs=None):
        self.model.averages.swap()
        self.swapped = True

    def on_epoch_end(self, epoch, logs=None):
        if self.swapped:
            self.model.averages.swap()
            self.swapped = False


class PreciseBatchNorm(keras.callbacks.Callback):
    """modern's: before validation (after ``SwapAverages``) each BN layer's moving statistics become their mean
    over the batch statistics of ``data`` under the current weights (momentum 0: keras3's ``BatchNorm`` then
    sets them to the batch's, the variance unbiased as slim's fused kernel)."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_test_begin(self, logs=None):
        layers = [layer for layer in self.model._flatten_layers(include_self=False)
                  if isinstance(layer, keras.layers.BatchNormalization)]
        if not layers:
            return
        recipe.precise_batch_norm(layers, lambda images: self.model(images, training=True),
                                  (images for images, _ in self.data.as_numpy_iterator()))


class SaveLast(keras.callbacks.Callback):
    """last.keras at each epoch end (Keras 3's whole model with its optimizer: continuing a complete run reads
    it, and ``keras.saving.load_model`` opens it in safe mode), written atomically."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with files.atomic(self.path) as tmp:
            self.model.save(tmp)


class RecordEpochs(keras.callbacks.Callback):
    """Each epoch's metrics into run.json (and curves.png)."""

    def __init__(self, run, hyper, decay_steps):
        super().__init__()
        self.run, self.hyper, self.decay_steps = run, hyper, decay_steps

    def on_epoch_end(self, epoch, logs=None):
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        metrics = {"epoch": epoch + 1, "step": step,
                   "lr": float(recipe.learning_rate(self.hyper, step - 1, self.decay_steps)),
                   **{k: float(logs[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}}
        self.run.record_epoch(metrics)


class StepBackup(keras.callbacks.Callback):
    """The weights and the optimizer (``iterations``: the global step) in one file, every ``save_every`` global
    steps inside an epoch and at each epoch's end after its metrics are in run.json (put it after
    ``RecordEpochs``: a backup of an epoch's last step taken before them would resume past an epoch never
    recorded); written under a temporary name and renamed, so a kill leaves the previous backup whole."""

    def __init__(self, path, save_every, steps_per_epoch):
        super().__init__()
        self.path, self.save_every, self.steps_per_epoch = path, save_every, steps_per_epoch

    def on_train_batch_end(self, batch, logs=None):
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        if step % self.save_every == 0 and step % self.steps_per_epoch:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        self._save()

    def _save(self):
        with files.atomic(self.path) as tmp:
            self.model.save_weights(tmp)


def callbacks(run, records_dir, steps_per_epoch, decay_steps, done):
    """In the order they must run: best.h5 (with the averages swapped in and precise statistics, as validation
    saw them), last.keras, TensorBoard, run.json, the backup; ``done``: the epochs complete before this
    attempt's first step."""
    h = run.hyper
    averaged = [SwapAverages()] if h.moving_average_decay else []
    precise = [PreciseBatchNorm(statistics_data(run, records_dir, min(h.precise_bn_batches, steps_per_epoch)))
               ] if h.batch_norm_statistics == "precise" else []
    return [SaveBest(run.path(KERAS3_BEST), run.best_to_beat(done)), *averaged, *precise,
            SaveLast(run.path(KERAS3_LAST)), keras.callbacks.TensorBoard(run.path(LOGS), write_graph=False),
            RecordEpochs(run, h, decay_steps), StepBackup(run.path(KERAS3_BACKUP), h.save_every, steps_per_epoch)]


# --- the loop ------------------------------------------------------------------------------------------

def train(run, records_dir, progress=True, init_from=None):
    """Train (or resume at the exact batch, or continue) ``run`` on the records in ``records_dir``."""
    h = run.hyper
    steps_per_epoch, val_steps = flowio.epoch_steps(records_dir, h.batch_size)
    keras.utils.set_random_seed(h.seed)
    decay_steps = recipe.decay_steps(h, flowio.num_examples(records_dir, "train"))
    model = compiled_model(run, decay_steps)
    run.keras_backend = keras.backend.backend()
    done = len(run.epochs)
    start = backed_up_step(model, run.path(KERAS3_BACKUP))
    if start == 0 and done and os.path.exists(run.path(KERAS3_LAST)):  # a complete run, continued
        model.load_weights(run.path(KERAS3_LAST))
        start = int(ops.convert_to_numpy(model.optimizer.iterations))
    elif start == 0 and init_from:
        naming.initialise(model, run, init_from)
    run.resume_at(start)
    fits = [(start // steps_per_epoch, steps_per_epoch - start % steps_per_epoch, start)]
    if start % steps_per_epoch:  # the rest of the interrupted epoch, then the others from the next one's start
        fits.append((start // steps_per_epoch + 1, steps_per_epoch, (start // steps_per_epoch + 1) * steps_per_epoch))
    steps = callbacks(run, records_dir, steps_per_epoch, decay_steps, start // steps_per_epoch)
    verbose = 1 if progress and sys.stdout.isatty() else 2
    validation = inputs(run, records_dir, 0, "validation")
    for epoch, steps_this_epoch, first in fits:
        epochs = epoch + 1 if steps_this_epoch != steps_per_epoch else h.epochs
        if epoch >= epochs:
            continue
        model.fit(inputs(run, records_dir, first), epochs=epochs, initial_epoch=epoch,
                  steps_per_epoch=steps_this_epoch, validation_data=validation, validation_steps=val_steps,
                  callbacks=steps, verbose=verbose, shuffle=False)  # flowio shuffles, seeded
    files.remove(run.path(KERAS3_BACKUP))  # the run is complete: last.keras continues it
    return model
