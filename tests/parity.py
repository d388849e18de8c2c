"""Building the same network in both halves for parity tests: a real Saver checkpoint of a legacy graph with
random weights (BN statistics included, so nothing is at its trivial initial value) and its logits."""

import numpy as np

import legacy
from legacy.slim_compat import tf


def random_value(name, shape, rng):
    """A plausible random value for a variable, by what its name says it is."""
    if name.endswith(("weights", "kernel")):
        fan_in = int(np.prod(shape[:-1]))
        return rng.normal(0, np.sqrt(2.0 / fan_in), shape)
    if name.endswith(("gamma", "moving_variance")):
        return rng.uniform(0.5, 1.5, shape)
    return rng.normal(0, 0.2, shape)  # biases, beta, moving_mean


def legacy_run(name, images, num_classes, tmp_path, seed=0):
    """Build ``name`` in a fresh graph, set random weights, save a Saver checkpoint, and compute logits.

    Returns ``(checkpoint prefix, inference logits, training-mode logits, {variable name: shape})``.
    """
    rng = np.random.default_rng(seed)
    logits = {}
    prefix = str(tmp_path / f"{name}.ckpt")
    for is_training in (False, True):
        graph = tf.Graph()
        with graph.as_default():
            x = tf.placeholder(tf.float32, images.shape)
            out, _ = legacy.build(name, x, num_classes, is_training=is_training)
            variables = tf.global_variables()
            with tf.Session(graph=graph) as sess:
                if not is_training:
                    sess.run(tf.global_variables_initializer())
                    for v in variables:
                        v.load(random_value(v.op.name, v.shape.as_list(), rng).astype(np.float32), sess)
                    tf.train.Saver().save(sess, prefix, write_meta_graph=False)
                    shapes = {v.op.name: v.shape.as_list() for v in variables}
                else:
                    tf.train.Saver().restore(sess, prefix)
                logits[is_training] = sess.run(out, {x: images})  # update ops not run: a pure forward pass
    return prefix, logits[False], logits[True], shapes


def rename_variable(prefix, old, new, out_prefix):
    """Copy checkpoint ``prefix`` to ``out_prefix`` with variable ``old`` saved as ``new``."""
    reader = tf.train.load_checkpoint(prefix)
    graph = tf.Graph()
    with graph.as_default():
        copies = {new if n == old else n: tf.Variable(reader.get_tensor(n))
                  for n in reader.get_variable_to_shape_map()}
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver(copies).save(sess, out_prefix, write_meta_graph=False)
    return out_prefix


def max_relative_error(got, reference):
    return float(np.max(np.abs(got - reference)) / np.max(np.abs(reference)))
