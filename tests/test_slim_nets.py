"""tf_slim's own classification nets in both halves: legacy calls tf_slim's functions, modern ports them.

Every comparison is against tf_slim's own graph: its variables (names and shapes, one to one with the modern
weights), pinned parameter counts (published totals, not computed from either half), and logits from a
checkpoint tf_slim's graph wrote after one real training step (so it also holds the optimizer's slots and
``global_step``, which the modern model must skip). Guards: the logits spread, one perturbed weight and one
renamed variable fail. These nets hold 50-146 M parameters at 224x224 or more: outside ``make test-fast``.
"""

import numpy as np
import pytest

import legacy
import modern
from core import checkpoints, models
from core.errors import UserError
from core.run_dir import Run
from helpers import SLIM_CONVNET_COUNTS, max_relative_error, random_values, run_script, set_values
from legacy.slim_compat import tf
from modern import naming

CONVNETS = [pytest.param(n, marks=pytest.mark.slow) for n in sorted(SLIM_CONVNET_COUNTS)]
# logits of a tf_slim checkpoint in process: one VGG (vgg_a and vgg_19 differ only in how many convolutions the
# table repeats, which the names test covers) and OverFeat; alexnet_v2 through convert_checkpoint.py below
CONVERTED = [pytest.param(n, marks=pytest.mark.slow) for n in ("vgg_16", "overfeat")]


def slim_variables(name, num_classes):
    size = models.default_input_size(name)
    graph = tf.Graph()
    with graph.as_default():
        logits, end_points = legacy.build(name, tf.placeholder(tf.float32, [2, size, size, 3]), num_classes)
        return logits.shape.as_list(), {v.op.name: v.shape.as_list() for v in tf.global_variables()}, end_points


@pytest.mark.parametrize("name", CONVNETS)
def test_counts_names_and_shapes_are_tf_slims(name):
    function, _ = legacy.slim_convnets.NETS[name]
    assert models.spec(name).head == "fc8" and function.__module__.startswith("tf_slim.nets.")
    # at research/slim's 1000 classes (the published totals); 10 classes changes fc8 alone (990 x 4097 fewer: the
    # README's figure), which the other tests' builds use
    total = SLIM_CONVNET_COUNTS[name]
    shape, variables, end_points = slim_variables(name, 1000)
    assert shape == [2, 1000] and sum(int(np.prod(s)) for s in variables.values()) == total
    model = modern.build(name, 1000)
    assert model.count_params() == total and not model.non_trainable_weights
    assert {n: w.shape.as_list() for n, w in naming.weight_names(model).items()} == variables
    assert f"{name}/fc8" in end_points and f"{name}/pool5" in end_points


def slim_checkpoint(name, images, prefix):
    """tf_slim's graph of ``name`` (random weights) trained one Momentum step, saved with its slots and step;
    returns the inference logits of the saved weights, from tf_slim's graph again."""
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        logits, _ = legacy.build(name, tf.constant(images), 10, is_training=True)
        loss = tf.losses.sparse_softmax_cross_entropy(tf.constant([1, 7]), logits)
        step = tf.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, tf.train.get_or_create_global_step())
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            set_values(sess, random_values(tf.model_variables(), rng))
            sess.run(step)
            tf.train.Saver().save(sess, prefix, write_meta_graph=False)
    graph = tf.Graph()
    with graph.as_default():
        logits, _ = legacy.build(name, tf.constant(images), 10, is_training=False)
        with tf.Session(graph=graph) as sess:
            tf.train.Saver(tf.model_variables()).restore(sess, prefix)
            return sess.run(logits)


@pytest.mark.parametrize("name", CONVERTED)
def test_a_checkpoint_tf_slim_wrote_gives_the_same_logits_in_the_modern_model(name, tmp_path):
    size = models.default_input_size(name)
    images = np.random.default_rng(1).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    prefix = str(tmp_path / "model.ckpt")
    reference = slim_checkpoint(name, images, prefix)
    assert reference.std() > 0.1
    values, _ = checkpoints.read(prefix)
    assert "global_step" in values and any(n.endswith("/Momentum") for n in values)  # what must be skipped
    model = modern.build(name, 10)
    naming.assign(model, values)
    assert max_relative_error(model(images, training=False).numpy(), reference) <= 1e-5
    # the guards: one perturbed weight fails the comparison, one renamed variable is refused by name
    # (a head bias: with random weights, one element of an inner kernel often meets only dead ReLUs)
    bias = naming.weight_names(model)[f"{name}/fc8/biases"]
    bias.assign(bias.numpy() + np.eye(10, dtype=np.float32)[3] * 0.5)
    assert max_relative_error(model(images, training=False).numpy(), reference) > 1e-3
    renamed = {(f"{name}/fc7/kernel" if n == f"{name}/fc7/weights" else n): v for n, v in values.items()}
    with pytest.raises(UserError, match=rf"missing: {name}/fc7/weights.*unexpected: {name}/fc7/kernel"):
        naming.assign(modern.build(name, 10), renamed)


@pytest.mark.slow
def test_convert_checkpoint_py_turns_tf_slims_alexnet_v2_checkpoint_into_a_run_with_its_logits(tmp_path):
    """The whole command line for one of these nets (the others convert in process above): the model and the
    classes read from the checkpoint, the slots and step skipped, vgg's preprocessing recorded."""
    from modern.weights import Predictor
    images = np.random.default_rng(1).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    reference = slim_checkpoint("alexnet_v2", images, str(tmp_path / "model.ckpt"))
    proc = run_script("convert_checkpoint.py", tmp_path / "model.ckpt", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(alexnet_v2, 10 classes, 16 variables)" in proc.stdout
    run = Run.read(str(tmp_path / "run"))
    assert (run.model, run.num_classes, run.image_size, run.preprocessing["recipe"]) == ("alexnet_v2", 10, 224, "vgg")
    assert max_relative_error(Predictor(run)(images), reference) <= 1e-5


def test_a_plain_convnet_refuses_a_bn_decay_and_a_size_its_fully_connected_convolutions_cannot_take():
    for build in (lambda: legacy.build("vgg_16", None, 10, batch_norm_decay=0.9),
                  lambda: modern.build("vgg_16", 10, batch_norm_decay=0.9)):
        with pytest.raises(ValueError, match="vgg_16 has no batch norm"):
            build()
    with pytest.raises(ValueError, match="224 to 255"):
        models.check_size("vgg_16", 256)
    models.check_size("vgg_16", 255)
    with pytest.raises(ValueError, match="at least 224"):
        models.check_size("vgg_16", 223)
