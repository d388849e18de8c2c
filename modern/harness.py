"""What a TF1 codebase wrapped around its training loop, the TF2 way: callbacks, keras.metrics, tf.summary,
argparse (twin: legacy/harness.py).

Each idiom of the twin, on the same tiny net, and what it became here:

* ``MonitoredTrainingSession`` + hooks -> ``model.fit`` + callbacks: ``CheckpointSaverHook(save_steps)`` ->
  ``CheckpointEvery`` (a ``tf.train.CheckpointManager``: the same ``model.ckpt-<step>`` files, at step 0 and at the
  end too; ``ModelCheckpoint(save_freq=n)`` saves neither and numbers its files by epoch and batch);
  ``SummarySaverHook(save_steps)`` -> ``TensorBoard(update_freq=n)``, whose writer and ``record_if`` the
  ``tf.summary`` calls in ``train_step`` use; ``StopAtStepHook(last_step)`` -> ``fit(steps_per_epoch=last_step)``;
  ``LoggingTensorHook(every_n_iter)`` -> ``LogEvery``; a custom hook's ``after_run`` -> ``on_train_batch_end``;
* ``tf.compat.v1.metrics.accuracy`` / ``mean`` / ``recall_at_k`` -> ``SparseCategoricalAccuracy`` / ``Mean`` /
  ``SparseTopKCategoricalAccuracy`` (``update_state`` per batch, ``result`` at the end; the state is the metric's,
  not the graph's local variables); the hand-built confusion matrix -> ``ConfusionMatrix(keras.metrics.Metric)``;
* ``summary.scalar / image / histogram`` + ``merge_all`` + ``FileWriter`` -> ``tf.summary`` in ``train_step``, written
  with the global step's numbering (TensorBoard's own step would be one less);
* ``tf.app.flags`` + ``tf.app.run`` -> ``argparse``: ``python -m modern.harness --train-steps 3``.

Keras's batch logs hold the epoch's running mean of the loss, where a TF1 hook sees the step's own loss:
``train_step`` adds the step's as ``step_loss``.

Sections, in the same order as the twin: the tiny model, hooks, metrics, summaries, flags.
"""

import argparse
import os
import tempfile

import tensorflow as tf
import tf_keras as keras

from core.harness import CLASSES, IMAGE_SIZE, tiny_problem

# each TF1 variable of the twin -> (Keras layer, weight): how the twin's first weights are loaded here
TF1_NAMES = {"conv1/weights": ("conv1", "kernel"), "conv1/biases": ("conv1", "bias"),
             "logits/weights": ("logits", "kernel"), "logits/biases": ("logits", "bias")}


# --- the tiny model ------------------------------------------------------------------------------------------

class TinyModel(keras.Model):
    """A functional model whose ``train_step`` also writes the summaries and reports the step's own loss."""

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            logits = self(images, training=True)
            loss = self.compute_loss(images, labels, logits)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        write_summaries(self, images, loss)
        return {**self.compute_metrics(images, labels, logits, None), "step_loss": loss}


def tiny_model(initial=None):
    """``conv1`` (3x3, 4 filters, ReLU, SAME) -> 2x2 max pool -> ``logits`` (dense); ``initial`` (the twin's
    ``{variable name: value}``) set through ``TF1_NAMES``."""
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="images")
    net = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(images)
    net = keras.layers.MaxPooling2D(2, name="pool1")(net)
    logits = keras.layers.Dense(CLASSES, name="logits")(keras.layers.Flatten(name="flatten")(net))
    model = TinyModel(images, logits, name="tiny")
    for name, value in (initial or {}).items():
        layer, weight = TF1_NAMES[name]
        getattr(model.get_layer(layer), weight).assign(value)
    return model


# --- hooks ---------------------------------------------------------------------------------------------------

class CheckpointEvery(keras.callbacks.Callback):
    """CheckpointSaverHook: ``model.ckpt-<step>`` in ``directory`` at step 0, every ``every`` steps and at the end
    (the model and the optimizer, its step counter included; the last 5 kept, as a Saver does)."""

    def __init__(self, directory, every):
        super().__init__()
        self.directory, self.every = directory, every

    def on_train_begin(self, logs=None):
        checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer)
        self.manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=5,
                                                  checkpoint_name="model.ckpt")
        self.saved_step = None
        self.save()

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) % self.every == 0:
            self.save()

    def on_train_end(self, logs=None):
        self.save()

    def save(self):
        step = int(self.model.optimizer.iterations)
        if step != self.saved_step:
            self.manager.save(checkpoint_number=step)
            self.saved_step = step


class LogEvery(keras.callbacks.Callback):
    """LoggingTensorHook: the step's loss on TensorFlow's logger at the first step and every ``every`` steps."""

    def __init__(self, every):
        super().__init__()
        self.every = every

    def on_train_batch_end(self, batch, logs=None):
        if batch % self.every == 0:
            tf.get_logger().info("loss = %.6f", float(logs["step_loss"]))


class RecordLoss(keras.callbacks.Callback):
    """The custom hook: ``records`` gets ``(global step, loss)`` after every step."""

    def __init__(self):
        super().__init__()
        self.records = []

    def on_train_batch_end(self, batch, logs=None):
        # logs["loss"] is the epoch's running mean; the step's own loss is train_step's "step_loss"
        self.records.append((int(self.model.optimizer.iterations), float(logs["step_loss"])))


def train(images, labels, initial, model_dir, train_steps=6, batch_size=4, learning_rate=0.1, decay=0.9,
          save_steps=2):
    """Train ``tiny_model(initial)`` with ``fit`` for ``train_steps`` steps; return the ``RecordLoss`` records.

    Plain SGD on ``ExponentialDecay(learning_rate, 1, decay)``; the batches in order (no shuffle). Every
    ``save_steps`` steps the callbacks write a checkpoint to ``model_dir`` (also at step 0 and at the end),
    summaries to ``model_dir/logs/train`` and a log line.
    """
    model = tiny_model(initial)
    lr = keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps=1, decay_rate=decay)
    model.compile(keras.optimizers.SGD(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size, drop_remainder=True)
    record = RecordLoss()
    callbacks = [CheckpointEvery(model_dir, save_steps),
                 keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"), update_freq=save_steps,
                                             write_graph=False),
                 LogEvery(save_steps), record]
    # one epoch of train_steps steps: the twin's StopAtStepHook(last_step=train_steps) on a fresh run
    model.fit(dataset.repeat(), epochs=1, steps_per_epoch=train_steps, callbacks=callbacks, verbose=0)
    return record.records


# --- metrics -------------------------------------------------------------------------------------------------

class ConfusionMatrix(keras.metrics.Metric):
    """The sum of each batch's ``tf.math.confusion_matrix`` (rows: labels, columns: the logits' argmax)."""

    def __init__(self, num_classes=CLASSES, name="confusion_matrix", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.total = self.add_weight("total", shape=(num_classes, num_classes), dtype=tf.int64,
                                     initializer="zeros")

    def update_state(self, labels, logits, sample_weight=None):
        predictions = tf.argmax(logits, axis=-1)
        self.total.assign_add(tf.math.confusion_matrix(labels, predictions, self.num_classes, dtype=tf.int64))

    def result(self):
        return tf.identity(self.total)

    def reset_state(self):
        self.total.assign(tf.zeros_like(self.total))


def streaming_metrics(batches, k=2):
    """Stream ``(logits, labels)`` batches through Keras metrics; return ``{name: value}`` after the last one.

    Names as the twin's: ``accuracy``, ``mean_loss``, ``recall_at_<k>``, ``confusion_matrix``.
    """
    accuracy, mean_loss = keras.metrics.SparseCategoricalAccuracy(), keras.metrics.Mean()
    recall, confusion = keras.metrics.SparseTopKCategoricalAccuracy(k), ConfusionMatrix()
    for logits, labels in batches:
        accuracy.update_state(labels, logits)
        mean_loss.update_state(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        recall.update_state(labels, logits)  # a tie at the k-th place counts as a hit (TF1's top_k breaks it)
        confusion.update_state(labels, logits)
    return {"accuracy": accuracy.result().numpy(), "mean_loss": mean_loss.result().numpy(),
            f"recall_at_{k}": recall.result().numpy(), "confusion_matrix": confusion.result().numpy()}


# --- summaries -----------------------------------------------------------------------------------------------

def write_summaries(model, images, loss, max_images=3):
    """The twin's summaries, written from ``train_step`` by the ``TensorBoard`` callback's writer every
    ``update_freq`` steps.

    Tags: ``loss``, ``learning_rate``, ``input`` (one tag, up to ``max_images`` images), ``weights/<TF1 name>``.
    ``step`` is the optimizer's step count after this update, as TF1's global step: the callback's default step
    (its batch counter before the update) would put the first batch at step 0, where TF1 puts it at 1.
    """
    step = model.optimizer.iterations
    tf.summary.scalar("loss", loss, step=step)
    tf.summary.scalar("learning_rate", model.optimizer.learning_rate, step=step)  # the rate of this update
    tf.summary.image("input", images, max_outputs=max_images, step=step)
    for name, (layer, weight) in TF1_NAMES.items():
        tf.summary.histogram(f"weights/{name}", getattr(model.get_layer(layer), weight), step=step)


# --- flags ---------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    """The twin's flags, with argparse's dashes."""
    parser = argparse.ArgumentParser(prog="python -m modern.harness",
                                     description="Train the tiny problem with fit and callbacks.")
    parser.add_argument("--train-steps", type=int, default=6, help="Stop after this many steps.")
    parser.add_argument("--batch-size", type=int, default=4, help="Images per step.")
    parser.add_argument("--learning-rate", type=float, default=0.1, help="The learning rate at step 0.")
    parser.add_argument("--learning-rate-decay-factor", type=float, default=0.9,
                        help="The learning rate's decay per step.")
    parser.add_argument("--save-steps", type=int, default=2,
                        help="Checkpoint, summaries and a log line every this many steps.")
    parser.add_argument("--model-dir", help="Where checkpoints and summaries go (default: a temporary folder).")
    return parser.parse_args(argv)


def main(argv=None):
    """Train the tiny problem as the arguments say; print the final step and loss."""
    args = parse_args(argv)
    images, labels, initial = tiny_problem()
    with tempfile.TemporaryDirectory(prefix="modern-harness-") as scratch:
        records = train(images, labels, initial, args.model_dir or scratch, train_steps=args.train_steps,
                        batch_size=args.batch_size, learning_rate=args.learning_rate,
                        decay=args.learning_rate_decay_factor, save_steps=args.save_steps)
    step, loss = records[-1]
    print(f"modern harness: step {step} loss {loss:.6f}")


if __name__ == "__main__":
    main()
