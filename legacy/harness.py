"""What a TF1 codebase wraps around its training loop: hooks, streaming metrics, summaries, flags
(twin: modern/harness.py).

Each TF1 idiom here, on a tiny slim net, and what it became in the twin:

* ``MonitoredTrainingSession`` + ``SessionRunHook``s -> ``model.fit`` + callbacks:
  ``CheckpointSaverHook(save_steps)`` -> a ``tf.train.CheckpointManager`` callback (the same ``model.ckpt-<step>``
  files, step 0 included); ``SummarySaverHook(save_steps)`` -> ``TensorBoard(update_freq)`` around ``tf.summary``
  calls in ``train_step``; ``StopAtStepHook(last_step)`` -> ``steps_per_epoch``; ``LoggingTensorHook(every_n_iter)``
  -> a callback that logs every n-th batch; a custom hook's ``before_run`` / ``after_run`` ->
  ``Callback.on_train_batch_end``;
* ``tf.compat.v1.metrics.accuracy`` / ``mean`` / ``recall_at_k`` (local variables, an update op run per batch, the
  value read at the end) -> ``keras.metrics`` objects (``update_state`` per batch, ``result`` at the end); the
  confusion matrix, which neither library streams: a local variable summing ``tf.math.confusion_matrix`` ->
  a ``keras.metrics.Metric`` subclass;
* ``tf.compat.v1.summary.scalar / image / histogram`` + ``merge_all`` + a ``FileWriter`` -> ``tf.summary`` calls in
  ``train_step``, written by the ``TensorBoard`` callback's writer;
* ``tf.compat.v1.app.flags`` + ``tf.compat.v1.app.run`` -> ``argparse``: ``python -m legacy.harness --train_steps 3``.

Sections, in the same order as the twin: the tiny model, hooks, metrics, summaries, flags.
"""

import os
import tempfile


from core.harness import CLASSES, tiny_problem
from legacy.slim_compat import slim, tf



# --- the tiny model ------------------------------------------------------------------------------------------

def tiny_model(images):
    """Logits of ``conv1`` (3x3, 4 filters, ReLU, SAME) -> 2x2 max pool -> ``logits`` (dense); no BN, no dropout."""
    net = slim.conv2d(images, 4, 3, scope="conv1")
    net = slim.max_pool2d(net, 2, scope="pool1")
    net = tf.reshape(net, [-1, 4 * 4 * 4])  # NHWC order, as Keras's Flatten
    return slim.fully_connected(net, CLASSES, activation_fn=None, scope="logits")


# --- hooks ---------------------------------------------------------------------------------------------------

class RecordLoss(tf.train.SessionRunHook):
    """A custom hook: ``records`` gets ``(global step, loss)`` after every step."""

    def __init__(self, loss):
        self.loss = loss
        self.records = []

    def begin(self):
        self._global_step = tf.train.get_global_step()

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self.loss)  # fetched by the same run as the train op

    def after_run(self, run_context, run_values):
        # read after the run: a global step fetched by the run itself may be read before or after its increment
        step = run_context.session.run(self._global_step)
        self.records.append((int(step), float(run_values.results)))


def log_loss(values):
    """LoggingTensorHook's formatter: one line per logged step."""
    return f"loss = {values['loss']:.6f}"


def train(images, labels, initial, model_dir, train_steps=6, batch_size=4, learning_rate=0.1, decay=0.9,
          save_steps=2):
    """Train ``tiny_model`` under ``MonitoredTrainingSession`` to global step ``train_steps``; return the
    ``RecordLoss`` records.

    Plain SGD on ``exponential_decay(learning_rate, global_step, 1, decay)``; the batches in order (no shuffle).
    Every ``save_steps`` steps the hooks write a checkpoint to ``model_dir`` (also at step 0 and at the end),
    summaries to ``model_dir/logs/train`` and a log line; ``initial`` (``{variable name: value}``) is assigned
    once the variables are initialised.
    """
    graph = tf.Graph()
    with graph.as_default():
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size, drop_remainder=True)
        batch_images, batch_labels = tf.data.make_one_shot_iterator(dataset.repeat()).get_next()
        loss = tf.losses.sparse_softmax_cross_entropy(batch_labels, tiny_model(batch_images))
        global_step = tf.train.get_or_create_global_step()
        lr = tf.train.exponential_decay(learning_rate, global_step, decay_steps=1, decay_rate=decay)
        train_op = tf.train.GradientDescentOptimizer(lr).minimize(loss, global_step=global_step)
        assign = slim.assign_from_values_fn(initial)  # slim's warm start: ops added before the graph is finalised
        scaffold = tf.train.Scaffold(init_fn=lambda scaffold, session: assign(session))
        record = RecordLoss(loss)
        hooks = [tf.train.CheckpointSaverHook(model_dir, save_steps=save_steps, scaffold=scaffold),
                 tf.train.SummarySaverHook(save_steps=save_steps, output_dir=os.path.join(model_dir, "logs", "train"),
                                           summary_op=add_summaries(batch_images, loss, lr)),
                 tf.train.StopAtStepHook(last_step=train_steps),
                 tf.train.LoggingTensorHook({"loss": loss}, every_n_iter=save_steps, formatter=log_loss),
                 record]
        with tf.train.MonitoredTrainingSession(scaffold=scaffold, hooks=hooks) as session:
            while not session.should_stop():
                session.run(train_op)
    return record.records


# --- metrics -------------------------------------------------------------------------------------------------

def streaming_confusion_matrix(labels, predictions, num_classes=CLASSES):
    """``(value, update_op)`` as ``tf.compat.v1.metrics`` return them: a local variable that sums each batch's
    ``tf.math.confusion_matrix`` (rows: labels, columns: predictions)."""
    total = tf.Variable(tf.zeros([num_classes, num_classes], tf.int64), trainable=False, name="confusion_matrix",
                        collections=[tf.GraphKeys.LOCAL_VARIABLES, tf.GraphKeys.METRIC_VARIABLES])
    update = tf.assign_add(total, tf.math.confusion_matrix(labels, predictions, num_classes, dtype=tf.int64))
    return tf.identity(total), update


def streaming_metrics(batches, k=2):
    """Stream ``(logits, labels)`` batches through TF1's metrics; return ``{name: value}`` after the last one.

    Names: ``accuracy``, ``mean_loss`` (the mean per-example cross-entropy), ``recall_at_<k>`` (the label among
    the k largest logits) and ``confusion_matrix``.
    """
    graph = tf.Graph()
    with graph.as_default():
        logits = tf.placeholder(tf.float32, [None, CLASSES])
        labels = tf.placeholder(tf.int64, [None])
        predictions = tf.argmax(logits, axis=1)
        metrics = {"accuracy": tf.metrics.accuracy(labels, predictions),
                   "mean_loss": tf.metrics.mean(
                       tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)),
                   f"recall_at_{k}": tf.metrics.recall_at_k(labels, logits, k),  # top_k breaks ties by index
                   "confusion_matrix": streaming_confusion_matrix(labels, predictions)}
        with tf.Session(graph=graph) as session:
            session.run(tf.local_variables_initializer())  # the metrics' totals and counts are local variables
            for batch_logits, batch_labels in batches:
                session.run([update for _, update in metrics.values()], {logits: batch_logits, labels: batch_labels})
            # read once at the end: a value fetched by the same run as its update op may see it or not
            return session.run({name: value for name, (value, _) in metrics.items()})


# --- summaries -----------------------------------------------------------------------------------------------

def add_summaries(images, loss, learning_rate, max_images=3):
    """The per-step summaries merged into one op (SummarySaverHook runs it every ``save_steps`` steps).

    Tags: ``loss``, ``learning_rate``, ``input/image/0`` .. ``input/image/2`` (TF1 gives each image its own tag;
    TF2 writes one ``input`` tag holding them all), and ``weights/<variable name>`` for each trainable variable.
    """
    tf.summary.scalar("loss", loss)
    tf.summary.scalar("learning_rate", learning_rate)
    tf.summary.image("input", images, max_outputs=max_images)
    with tf.name_scope("weights"):  # outside it, a summary named "conv1/weights" is tagged "conv1/weights_1"
        for variable in tf.trainable_variables():
            tf.summary.histogram(variable.op.name, variable)
    return tf.summary.merge_all()


# --- flags ---------------------------------------------------------------------------------------------------

def define_flags():
    """The training flags. absl's ``FLAGS`` is global to the process and refuses a flag defined twice, so they are
    defined when the script runs (``__main__``), never at import."""
    flags = tf.app.flags
    flags.DEFINE_integer("train_steps", 6, "Stop at this global step (StopAtStepHook's last_step).")
    flags.DEFINE_integer("batch_size", 4, "Images per step.")
    flags.DEFINE_float("learning_rate", 0.1, "The learning rate at step 0.")
    flags.DEFINE_float("learning_rate_decay_factor", 0.9, "The learning rate's decay per step.")
    flags.DEFINE_integer("save_steps", 2, "Checkpoint, summaries and a log line every this many steps.")
    flags.DEFINE_string("model_dir", None, "Where checkpoints and summaries go (default: a temporary folder).")


def main(argv):
    """Train the tiny problem as the flags say; print the final step and loss."""
    del argv  # what absl left after the flags
    flags = tf.app.flags.FLAGS
    images, labels, initial = tiny_problem()
    with tempfile.TemporaryDirectory(prefix="legacy-harness-") as scratch:
        records = train(images, labels, initial, flags.model_dir or scratch, train_steps=flags.train_steps,
                        batch_size=flags.batch_size, learning_rate=flags.learning_rate,
                        decay=flags.learning_rate_decay_factor, save_steps=flags.save_steps)
    step, loss = records[-1]
    print(f"legacy harness: step {step} loss {loss:.6f}")


if __name__ == "__main__":
    define_flags()
    tf.app.run(main)
