"""Training the TF1 way: one graph, a Session, Saver and FileWriter (twin: modern/train.py).

The article's train.py, kept honest for TF 2.21's ``tf.compat.v1``:

* the input is ``flowio.graph_input`` — a ``tf.data`` iterator inside the graph, where the article started
  queue runners;
* ``tf.compat.v1.train.MomentumOptimizer`` on ``exponential_decay`` (lr * decay ** (step // steps_per_epoch));
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
* a tqdm progress line while an epoch runs (on a terminal), and one line of metrics when it ends.

Sections, in the same order as the twin: counters, input, model and loss, checkpoints, the loop.
"""

import os
import sys

import numpy as np
from tqdm import tqdm

import flowio
import legacy
from flowio import checkpoints
from flowio import run_dir as rd
from legacy.slim_compat import tf, tf1_hashing
from tensorflow.core.protobuf import rewriter_config_pb2

CKPT_LAST, CKPT_BEST = os.path.join("ckpt", "last"), os.path.join("ckpt", "best")
LOGS = "logs"


# --- counters -----------------------------------------------------------------------------------------

def saved_step(checkpoint_dir):
    """The global step of the latest checkpoint in ``checkpoint_dir`` (0 when there is none)."""
    path = tf.train.latest_checkpoint(checkpoint_dir)
    if path is None:
        return 0
    checkpoints.check_complete(path, "pass --fresh to start the run over")
    return int(tf.train.load_checkpoint(path).get_tensor("global_step"))


# --- the loop -----------------------------------------------------------------------------------------

def _summary(writer, step, **values):
    writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=f"epoch_{k}", simple_value=v)
                                         for k, v in values.items()]), step)
    writer.flush()


# --- model and loss ----------------------------------------------------------------------------------

def training_graph(run, images, labels, steps_per_epoch):
    """The model on ``images`` and its training in the current graph: ``(logits, loss, regularization, train_op)``.

    ``loss`` is the mean cross-entropy plus the REGULARIZATION_LOSSES collection; ``train_op`` runs the BN
    moving-average updates (UPDATE_OPS) with a Momentum step at lr * decay ** (step // steps_per_epoch).
    """
    h = run["hyper"]
    logits, _ = legacy.build(run["model"], images, run["num_classes"], is_training=True,
                             weight_decay=h["weight_decay"], batch_norm_decay=h["batch_norm_decay"])
    global_step = tf.train.get_or_create_global_step()
    lr = tf.train.exponential_decay(h["lr"], global_step, steps_per_epoch, h["lr_decay_per_epoch"], staircase=True)
    regularization = tf.losses.get_regularization_loss()
    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits) + regularization
    # slim's create_train_op: the loss waits for the BN updates, and every gradient waits for the loss. The
    # common `with control_dependencies(UPDATE_OPS): minimize(loss)` instead gives each op minimize creates an
    # edge from every update op: 900k edges in DenseNet-201's graph, seconds of grappler pruning them.
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        loss = tf.identity(loss, name="loss_after_updates")
    optimizer = tf.train.MomentumOptimizer(lr, h["momentum"])
    if h["precision"] == "mixed_float16":  # float16 gradients underflow without loss scaling
        optimizer = tf.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, "dynamic")
    train_op = optimizer.minimize(loss, global_step)
    return logits, loss, regularization, train_op


def session_config(precision):
    """The Session config that runs the float32 graph in ``precision`` (TF1 had no dtype policies).

    Grappler rewrites the graph when the Session first runs it: ``mixed_bfloat16`` through oneDNN on CPU,
    ``mixed_float16`` on GPU. Variables stay float32; the loss stays float32 (grappler's deny list), the head's
    matmul does not (modern keeps the whole head in float32).
    """
    config = tf.ConfigProto()
    rewrites = config.graph_options.rewrite_options
    if precision == "mixed_bfloat16":
        rewrites.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == "mixed_float16":
        rewrites.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    return config


def initialise(sess, model_variables, run, init_from):
    """Fine-tuning: the variables outside ``init_from["exclude_scopes"]`` from ``init_from["checkpoint"]``."""
    values, source = checkpoints.read(init_from["checkpoint"], run["model"])
    wanted = {v.op.name: v for v in model_variables}
    chosen = checkpoints.select({n: v.shape.as_list() for n, v in wanted.items()}, values, run["model"],
                                init_from["exclude_scopes"], source)
    for name, value in chosen.items():
        wanted[name].load(value, sess)  # feeds the variable's initializer: no new op in the finalized graph
    run["init_from"] = {**init_from, "source": source, "restored": len(chosen),
                        "initialised": len(wanted) - len(chosen)}


def train(run_dir, run, records_dir, progress=True, init_from=None):
    """Train (or resume) the run in ``run_dir``; ``run`` is its run.json, updated as epochs end.

    ``init_from`` (``{"checkpoint": path, "exclude_scopes": [...]}``) sets the first weights of a run that
    starts at step 0.
    """
    h = run["hyper"]
    size, batch, num_classes = run["image_size"], h["batch_size"], run["num_classes"]
    steps_per_epoch = flowio.steps_per_epoch(records_dir, "train", batch, drop_remainder=True)
    val_steps = flowio.steps_per_epoch(records_dir, "validation", batch)
    last_dir, best_dir = os.path.join(run_dir, CKPT_LAST), os.path.join(run_dir, CKPT_BEST)
    start = saved_step(last_dir)
    if start:
        run["resumed_from_steps"].append(start)
        rd.write_run(run_dir, run)  # said at once: this attempt may be killed before its first epoch ends

    graph = tf.Graph()
    with graph.as_default(), tf1_hashing():
        tf.set_random_seed(h["seed"])
        # input
        images, labels = flowio.graph_input(graph, records_dir, "train", size, batch, training=True,
                                            flip=h["flip"], seed=h["seed"], drop_remainder=True,
                                            initial_step=start)
        val_images, val_labels = flowio.graph_input(graph, records_dir, "validation", size, batch)
        # model and loss
        logits, loss, regularization, train_op = training_graph(run, images, labels, steps_per_epoch)
        model_variables = [v for v in tf.global_variables()
                           if checkpoints.model_variables([v.op.name], run["model"])]
        with tf.variable_scope(tf.get_variable_scope(), reuse=True):
            val_logits, _ = legacy.build(run["model"], val_images, num_classes, is_training=False)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.float32))
        val_ce = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=val_labels, logits=val_logits))
        val_correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(val_logits, 1), val_labels), tf.float32))
        val_count = tf.size(val_labels)
        # checkpoints
        last_saver, best_saver = (tf.train.Saver(max_to_keep=1, save_relative_paths=True) for _ in range(2))
        writers = {s: tf.summary.FileWriter(os.path.join(run_dir, LOGS, s)) for s in ("train", "validation")}
        init = tf.global_variables_initializer()
    graph.finalize()

    os.makedirs(last_dir, exist_ok=True)
    os.makedirs(best_dir, exist_ok=True)
    with tf.Session(graph=graph, config=session_config(h["precision"])) as sess:
        def save(saver, folder, step):
            saver.save(sess, os.path.join(folder, "model.ckpt"), global_step=step, write_meta_graph=False)

        if start:
            last_saver.restore(sess, tf.train.latest_checkpoint(last_dir))  # checked by saved_step
        else:
            sess.run(init)
            if init_from:
                initialise(sess, model_variables, run, init_from)
        for saver, folder in ((last_saver, last_dir), (best_saver, best_dir)):
            state = tf.train.get_checkpoint_state(folder)
            if state:  # so that max_to_keep also retires the checkpoints of the run before this one
                saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
        step = start
        for epoch in range(start // steps_per_epoch, h["epochs"]):
            losses, accuracies = [], []
            end = (epoch + 1) * steps_per_epoch
            bar = tqdm(total=steps_per_epoch, initial=step - epoch * steps_per_epoch, unit="step", leave=False,
                       desc=f"epoch {epoch + 1}/{h['epochs']}", disable=not (progress and sys.stderr.isatty()))
            with bar:
                while step < end:
                    _, step_loss, step_accuracy = sess.run([train_op, loss, accuracy])
                    step += 1
                    losses.append(step_loss)
                    accuracies.append(step_accuracy)
                    bar.update()
                    bar.set_postfix(loss=f"{np.mean(losses):.4f}", accuracy=f"{np.mean(accuracies):.4f}")
                    if step % h["save_every"] == 0 and step < end:
                        save(last_saver, last_dir, step)
            ce_sum = correct = count = 0
            for _ in range(val_steps):  # the penalty comes with them: one more sess.run would prune the graph again
                a, b, c, penalty = sess.run([val_ce, val_correct, val_count, regularization])
                ce_sum, correct, count = ce_sum + a, correct + b, count + c
            last_lr = h["lr"] * h["lr_decay_per_epoch"] ** ((step - 1) // steps_per_epoch)  # what `lr` gave
            metrics = {"epoch": epoch + 1, "step": step, "lr": float(last_lr),
                       "loss": float(np.mean(losses)), "accuracy": float(np.mean(accuracies)),
                       "val_loss": float(ce_sum / count + penalty),
                       "val_accuracy": float(correct / count)}
            _summary(writers["train"], epoch, loss=metrics["loss"], accuracy=metrics["accuracy"],
                     learning_rate=metrics["lr"])
            _summary(writers["validation"], epoch, loss=metrics["val_loss"], accuracy=metrics["val_accuracy"])
            # run.json first: killed between the two, the rerun resumes before the epoch's end and records it
            # again, where the other order would resume after it with its metrics never written
            improved = rd.record_epoch(run_dir, run, metrics)
            save(last_saver, last_dir, step)
            if improved:
                save(best_saver, best_dir, step)
            print(f"epoch {epoch + 1}/{h['epochs']}: " + ", ".join(
                f"{k} {metrics[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")), flush=True)
    for writer in writers.values():
        writer.close()


# --- prediction (evaluate.py, use_model.py) -------------------------------------------------------------

class Predictor:
    """``predictor(images float32 [N, S, S, 3]) -> logits [N, C]`` from a run's best (else last) checkpoint."""

    def __init__(self, run_dir, run):
        path = (tf.train.latest_checkpoint(os.path.join(run_dir, CKPT_BEST))
                or tf.train.latest_checkpoint(os.path.join(run_dir, CKPT_LAST)))
        if path is None:
            raise flowio.UserError(f"{run_dir}: no checkpoint (ckpt/best or ckpt/last); train it first")
        checkpoints.check_complete(path, "train the run again (train.py --fresh)")
        size = run["image_size"]
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images = tf.placeholder(tf.float32, [None, size, size, 3])
            self.logits, _ = legacy.build(run["model"], self.images, run["num_classes"], is_training=False)
            saver = tf.train.Saver(tf.global_variables())
            self.sess = tf.Session(graph=self.graph)
            saver.restore(self.sess, path)

    def __call__(self, images):
        return self.sess.run(self.logits, {self.images: images})
