"""The model table's sizes and the BN decay, checked by building the models of both halves.

* ``min_size``: every model builds in both halves at its smallest size, and (where that is above 1) not one
  pixel below; where the table has a ``max_size``, at that size and not one pixel above. ``train.py``
  refuses a size outside them with one line naming the range, before TensorFlow starts.
* ``--bn-decay 0``: one training step of each half's own training code (legacy's graph, modern's compiled
  model) leaves every BN layer's moving statistics equal to the statistics of that batch at that layer,
  computed here with numpy from the layer's input.
"""

import numpy as np
import pytest
import tf_keras as keras

import legacy
import modern
from core import models
from core.run_dir import Run
from helpers import assert_user_error, run_script
from legacy.slim_compat import tf

# builds of a few seconds each in both halves; the rest stay outside `make test-fast`
QUICK = {"lenet5", "alexnet", "vgg13", "googlenet_cifar", "resnet18", "resnet18_cifar"}


def builds(half, name, size):
    """Whether ``half`` builds ``name`` at ``size`` and gives ``[1, 10]`` logits."""
    try:
        if half == "modern":
            logits = modern.build(name, 10, input_shape=(size, size, 3))(np.zeros((1, size, size, 3), np.float32))
            return tuple(logits.shape) == (1, 10)
        graph = tf.Graph()
        with graph.as_default():
            logits, _ = legacy.build(name, tf.placeholder(tf.float32, [1, size, size, 3]), 10, is_training=False)
            return logits.shape.as_list() == [1, 10]
    except ValueError:  # negative or zero dimensions: TensorFlow's shape inference
        return False


# A ResNet's sizes do not depend on its depth (the same strides, the same stem): one depth per family
# (the deeper ones build in 10-30 s each per half); nor an ImageNet DenseNet's on its growth rate or units per
# block (the same four blocks and three transitions): densenet_121x32 stands for the other three
DEEP_RESNETS = {f"{family}_{depth}" for family in ("jianshu_resnet", "resnet_v1", "resnet_v2")
                for depth in (101, 152, 200)}
LARGER_DENSENETS = {"densenet_161x48", "densenet_169x32", "densenet_201x32"}


@pytest.mark.parametrize("name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow)
                                  for n in models.list_models() if n not in DEEP_RESNETS | LARGER_DENSENETS])
def test_each_model_builds_at_its_smallest_size_and_not_below(name):
    smallest, largest = models.spec(name).min_size, models.spec(name).max_size
    for half in ("legacy", "modern"):
        assert builds(half, name, smallest), (half, smallest)
        if smallest > 1:
            assert not builds(half, name, smallest - 1), (half, smallest - 1)
        if largest is not None:  # and at its largest, not above
            assert builds(half, name, largest) and not builds(half, name, largest + 1), (half, largest)


def test_train_refuses_an_image_size_below_the_models_smallest_naming_it(tmp_path):
    proc = run_script("train.py", "--impl", "legacy", "--model", "alexnet", "--image-size", 56,
                      "--data", tmp_path / "none")
    assert_user_error(proc, "--image-size 56", "alexnet needs at least 57")
    proc = run_script("train.py", "--impl", "modern", "--model", "vgg_16", "--image-size", 256,
                      "--data", tmp_path / "none")
    assert_user_error(proc, "--image-size 256", "vgg_16 takes 224 to 255")
    proc = run_script("train.py", "--impl", "modern", "--model", "vgg_16", "--bn-decay", 0.9, "--data", tmp_path)
    assert_user_error(proc, "--bn-decay 0.9", "vgg_16 has no batch norm")


# --- --bn-decay 0 -----------------------------------------------------------------------------------------

SIZE, BATCH = 32, 8


def batch():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32), rng.integers(0, 3, BATCH)


def batch_statistics(x):
    """Mean and Bessel-corrected variance over all axes but the channels (what fused BN keeps)."""
    n = x.size // x.shape[-1]
    return x.mean((0, 1, 2)), x.var((0, 1, 2)) * n / (n - 1)


def assert_moving_statistics_are_the_batchs(moving, inputs):
    assert sorted(moving) == sorted(inputs) and len(moving) == 33  # jianshu_resnet_50: 32 in units + the head
    for layer, (mean, variance) in moving.items():
        want_mean, want_variance = batch_statistics(inputs[layer])
        np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-4 * np.abs(want_mean).max(), err_msg=layer)
        # plus float32's resolution at the layer's scale: a channel that is nearly constant in the batch (variance
        # 8e-8 where the others are ~1, seen once in the head's input) has no 1e-3 relative precision in float32
        np.testing.assert_allclose(variance, want_variance, rtol=1e-3, atol=1e-6 * want_variance.max(), err_msg=layer)
        assert np.abs(variance - 1).max() > 0.01, layer  # not the initial value: the step wrote them


def test_bn_decay_zero_makes_the_moving_statistics_the_batchs_in_legacy():
    from legacy.train import training_graph
    run = Run.in_memory("legacy", "jianshu_resnet_50", 3, SIZE, batch_size=BATCH, batch_norm_decay=0.0)
    images, labels = batch()
    graph = tf.Graph()
    with graph.as_default():
        x, y = tf.placeholder(tf.float32, images.shape), tf.placeholder(tf.int64, [BATCH])
        _, _, _, train_op = training_graph(run, x, y, decay_steps=1)
        norms = {op.name.rsplit("/", 1)[0]: op.inputs[0] for op in graph.get_operations()
                 if op.type.startswith("FusedBatchNorm") and "gradients" not in op.name}
        variables = {v.op.name: v for v in tf.global_variables()}
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            inputs = sess.run([train_op, norms], {x: images, y: labels})[1]  # the forward pass of the step
            moving = {layer: sess.run([variables[f"{layer}/moving_mean"], variables[f"{layer}/moving_variance"]])
                      for layer in norms}
    assert_moving_statistics_are_the_batchs(moving, inputs)


def test_bn_decay_zero_makes_the_moving_statistics_the_batchs_in_modern():
    from modern.train import compiled_model
    run = Run.in_memory("modern", "jianshu_resnet_50", 3, SIZE, batch_size=BATCH, batch_norm_decay=0.0)
    images, labels = batch()
    model = compiled_model(run, decay_steps=1)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # the inputs of every BN layer in training mode, with the weights before the step
    probe = keras.Model(model.input, [layer.input for layer in norms])
    inputs = {layer.name: a.numpy() for layer, a in zip(norms, probe(images, training=True))}
    model.train_on_batch(images, labels)
    moving = {layer.name: (layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in norms}
    assert_moving_statistics_are_the_batchs(moving, inputs)


def test_each_rows_weight_decay_is_its_sources_and_both_halves_build_its_penalty():
    """The table's defaults (core.models WEIGHT_DECAY) against tf_slim's own arg scopes' (read from their
    signatures) and the articles' numbers; and ``build`` resolves them once for either half: the regularization
    of a model built without ``weight_decay`` is the one built with the table's value, and 0 is honoured."""
    import inspect

    import tensorflow as tf2
    from tf_slim.nets import inception_v3, resnet_utils, vgg

    def arg_scope_default(fn):
        return inspect.signature(fn).parameters["weight_decay"].default

    expected = {"resnet": arg_scope_default(resnet_utils.resnet_arg_scope),
                "slim_convnets": arg_scope_default(vgg.vgg_arg_scope),
                "inception": arg_scope_default(inception_v3.inception_v3_arg_scope),
                "densenet": 2 * 1e-4,  # article 001's keras l2(1e-4), in slim's terms (half the sum of squares)
                "cnn": 0.0, "resnets_keras": 0.0}  # the other articles' nets and Keras ResNets: none
    assert expected == {"resnet": 1e-4, "slim_convnets": 5e-4, "inception": 4e-5, "densenet": 2e-4, "cnn": 0.0,
                        "resnets_keras": 0.0}
    for name in models.list_models():
        assert models.spec(name).weight_decay == expected[models.spec(name).family], name
    import modern

    def penalty(**kwargs):  # of the same initial weights
        model = modern.build("resnet_v1_50", 3, input_shape=(32, 32, 3), **kwargs)
        return float(tf2.add_n(model.losses))
    tf2.keras.utils.set_random_seed(0)
    default = penalty()
    tf2.keras.utils.set_random_seed(0)
    assert default == penalty(weight_decay=1e-4) > 0
    tf2.keras.utils.set_random_seed(0)
    assert penalty(weight_decay=0.0) == 0.0


@pytest.mark.slow
def test_each_rows_dropout_keep_probability_is_tf_slims_and_both_halves_build_it():
    """The table's keep probabilities against tf_slim's nets' own defaults (their signatures), resolved once by
    ``build``: modern's Dropout rate is 1 - the table's keep, and a keep given to legacy's is the one in the graph
    of tf_slim's dropout."""
    import inspect

    from tf_slim.nets import alexnet, inception_v1, inception_v2, inception_v3, overfeat, vgg

    nets = {"vgg_a": vgg.vgg_a, "vgg_16": vgg.vgg_16, "vgg_19": vgg.vgg_19, "alexnet_v2": alexnet.alexnet_v2,
            "overfeat": overfeat.overfeat, "inception_v1": inception_v1.inception_v1,
            "inception_v2": inception_v2.inception_v2, "inception_v3": inception_v3.inception_v3}
    keeps = {name: models.spec(name).dropout_keep_prob for name in models.list_models()}
    assert {n: k for n, k in keeps.items() if k is not None} == {
        name: inspect.signature(fn).parameters["dropout_keep_prob"].default for name, fn in nets.items()}
    model = modern.build("inception_v2", 3, input_shape=(32, 32, 3))  # the table's keep
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [pytest.approx(0.2)]
    graph = tf.Graph()
    with graph.as_default():  # a given keep
        legacy.build("inception_v2", tf.zeros([1, 32, 32, 3]), 3, dropout_keep_prob=0.7)
    rate = graph.get_operation_by_name("InceptionV2/Logits/Dropout_1b/dropout/GreaterEqual/y")  # u >= 1 - keep
    assert rate.get_attr("value").float_val[0] == pytest.approx(0.3)
