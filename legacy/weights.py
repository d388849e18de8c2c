"""A legacy run's weights in and out, and prediction with them (twin: modern/weights.py): what the scripts need of
the half besides training (docs/DESIGN.md §1, the half protocol).

* ``assign``: values by TF1 name into a graph's variables (fine-tuning's and conversion's one way in);
* ``variable_shapes``: what a checkpoint must hold for a run's model (``convert_checkpoint.py --list``);
* ``write_weights``: a converted run's checkpoint, as a Saver writes it;
* ``Predictor``: logits of a run's best (else last) checkpoint in a Session (evaluate.py, use_model.py).

Sections, in the same order as the twin: weights, prediction.
"""

import os

import legacy
from core import checkpoints, models
from core.errors import UserError
from core.run_dir import LEGACY_BEST, LEGACY_LAST
from legacy.slim_compat import tf


# --- weights --------------------------------------------------------------------------------------------

def assign(sess, variables, values, model, exclude_scopes=(), source="the checkpoint"):
    """Load ``values`` (``{name: array}``) into ``variables`` by name, outside ``exclude_scopes``; return how many.

    Missing, unexpected or mis-shaped variables are a UserError listing them (``core.checkpoints.select``).
    """
    wanted = {v.op.name: v for v in variables}
    chosen = checkpoints.select({n: v.shape.as_list() for n, v in wanted.items()}, values, model, exclude_scopes,
                                source)
    # one run of the chosen variables' initializers with their initial values fed: no new op in a finalized
    # graph. Variable.load does the same one variable per run, and each new (fetch, feed) pair makes the Session
    # prune and optimise the graph anew: 400 runs for inception_v3, a minute here
    initializers = [wanted[name].initializer for name in chosen]
    sess.run(initializers, {op.inputs[1]: value for op, value in zip(initializers, chosen.values())})
    return len(chosen)


def variable_shapes(run):
    """``{variable name: shape}`` of the run's model: what a checkpoint must hold (convert_checkpoint's ``--list``)."""
    graph = tf.Graph()
    with graph.as_default():
        size = run.image_size
        legacy.build(run.model, tf.placeholder(tf.float32, [None, size, size, 3]), run.num_classes, is_training=False)
        return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def write_weights(run, values, source):
    """A converted run's checkpoint: ``values`` loaded by name into the model's variables and saved as the
    run's best checkpoint (global step 0). Returns ``(how many variables it holds, resized)``: ``resized`` the
    auxiliary head's layers whose kernel follows the input size (``core.checkpoints.resized_aux``), left as
    initialised."""
    graph = tf.Graph()
    with graph.as_default():
        size = run.image_size
        legacy.build(run.model, tf.placeholder(tf.float32, [None, size, size, 3]), run.num_classes, is_training=False)
        variables = tf.global_variables()
        resized = checkpoints.resized_aux({v.op.name: v.shape.as_list() for v in variables}, values, run.model)
        tf.train.get_or_create_global_step()
        saver = tf.train.Saver(save_relative_paths=True)  # the folder is renamed once written
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            assign(sess, variables, values, models.scope(run.model), [s for pair in resized for s in pair], source)
            os.makedirs(run.path(LEGACY_BEST))
            saver.save(sess, os.path.join(run.path(LEGACY_BEST), "model.ckpt"), global_step=0, write_meta_graph=False)
    return len(variables), resized


def read_weights(run):
    """``{TF1 name: array}`` of the run's best checkpoint, else its last (``core.checkpoints.read`` of a run)."""
    prefix = next(filter(None, (tf.train.latest_checkpoint(run.path(d)) for d in (LEGACY_BEST, LEGACY_LAST))), None)
    if prefix is None:
        raise UserError(f"{run.folder}: this legacy run has no checkpoint yet; train it first")
    return checkpoints.read_tf1(prefix)


# --- prediction (evaluate.py, use_model.py) -------------------------------------------------------------

class Predictor:
    """``predictor(images float32 [N, S, S, 3]) -> logits [N, C]`` from a run's best (else last) checkpoint."""

    def __init__(self, run):
        path = (tf.train.latest_checkpoint(run.path(LEGACY_BEST)) or tf.train.latest_checkpoint(run.path(LEGACY_LAST)))
        if path is None:
            raise UserError(f"{run.folder}: no checkpoint ({LEGACY_BEST} or {LEGACY_LAST}); train it first")
        checkpoints.check_complete(path, "train the run again (train.py --fresh)")
        size = run.image_size
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.images = tf.placeholder(tf.float32, [None, size, size, 3])
            self.logits, _ = legacy.build(run.model, self.images, run.num_classes, is_training=False)
            saver = tf.train.Saver(tf.global_variables())
            self.sess = tf.Session(graph=self.graph)
            saver.restore(self.sess, path)

    def __call__(self, images):
        return self.sess.run(self.logits, {self.images: images})
