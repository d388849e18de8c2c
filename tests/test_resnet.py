"""The ResNets in both halves: registry, shapes, parameter counts, names, numbers, and the oneDNN crash guard.

Parametrized over the ResNets of ``list_models()``. The parameter counts are pinned here (computed
from the architecture and, for resnet_v1, measured on tf_slim's own net), not what either half reports.
"""

import subprocess
import sys
import textwrap
from functools import lru_cache

import numpy as np
import pytest

import legacy
import modern
from core.errors import UserError
from helpers import REPO, RESNET_COUNTS, legacy_run, max_relative_error, rename_variable
from legacy.slim_compat import tf
from modern.naming import layer_name, load, modern_name, weight_names

RESNETS = [n for n in legacy.list_models() if n.startswith(("jianshu_resnet_", "resnet_v1_", "resnet_v2_"))]
# The deep ones take 5-15 s to build in each half (the 200s 30 s): outside `make test-fast`, as is resnet_v2_50,
# tf_slim's own graph in legacy.
FAST = ("jianshu_resnet_50", "resnet_v1_50")


def param(name, *rest):
    """A test parameter of ``name`` (and ``rest``), marked slow unless ``name`` is one of FAST."""
    return pytest.param(name, *rest, marks=() if name in FAST else pytest.mark.slow,
                        id="-".join(map(str, (name, *rest))))


RESNET_PARAMS = [param(n) for n in RESNETS]
# Built at 32x32 only (a build at 224 takes 10-60 s; the counts do not depend on the size): the 200s, which get
# counts and the name bijection only (research/slim has no checkpoint of them), and the 101s and 152s (each the
# family's builder with more units of the 50's; the 50s are checked at both sizes and 1000 classes, which adds
# the same 990 logits of 2048 weights and a bias to every depth's count, as the test below holds)
SMALL_ONLY = ("_200", "_101", "_152")
UNIT = {"jianshu_resnet": "bottleneck", "resnet_v1": "bottleneck_v1", "resnet_v2": "bottleneck_v2"}


def unit_scope(name):
    return UNIT[name.rsplit("_", 1)[0]]


def test_the_resnets_are_in_the_table_at_224_and_resnet_v2_at_299():
    assert set(RESNETS) == set(RESNET_COUNTS) and len(RESNETS) == 11
    for name in RESNETS:
        size = 299 if name.startswith("resnet_v2_") else 224  # research/slim's table: resnet_v2 evaluated at 299
        assert modern.default_input_size(name) == legacy.default_input_size(name) == size


def test_unknown_names_and_arguments_raise_value_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet_49'.*jianshu_resnet_50"):
        modern.build("resnet_49", 10)
    with pytest.raises(ValueError, match="unknown model 'resnet_49'.*resnet_v1_50"):
        legacy.build("resnet_49", None, 10)
    with pytest.raises(ValueError, match="depth_multiplier.*weight_decay"):
        modern.build("jianshu_resnet_50", 10, depth_multiplier=2)
    with pytest.raises(ValueError, match="depth_multiplier.*weight_decay"):
        legacy.build("jianshu_resnet_50", None, 10, depth_multiplier=2)
    for registry in (legacy, modern):
        with pytest.raises(ValueError, match="registered twice"):
            registry.register_model("jianshu_resnet_50")(lambda *a, **k: None)
        with pytest.raises(ValueError, match="unknown model 'resnet_49'"):
            registry.register_model("resnet_49")(lambda *a, **k: None)


@lru_cache(maxsize=None)
def built(name, size, num_classes):
    """Both halves of ``name`` at ``size``: legacy variables and end-point shapes, and the modern model.

    Cached for the module (the twelve builds take about a minute and hold under 2 GiB)."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [2, size, size, 3])
        logits, end_points = legacy.build(name, images, num_classes)
        variables = {v.op.name: (v.shape.as_list(), v in tf.trainable_variables()) for v in tf.global_variables()}
        shapes = {k: v.shape.as_list() for k, v in end_points.items()}
        shapes["logits"] = logits.shape.as_list()
    model = modern.build(name, num_classes, input_shape=(size, size, 3))
    return variables, shapes, model


SIZES = [(224, 1000), (32, 10)]


@pytest.mark.parametrize("name, size, num_classes",
                         [param(n, size, classes) for n in RESNETS for size, classes in SIZES
                          if not n.endswith("_200") and (size == 32 or not n.endswith(SMALL_ONLY))])
def test_output_and_end_point_shapes_are_equal_between_halves(name, size, num_classes):
    _, shapes, model = built(name, size, num_classes)
    assert shapes["logits"] == [2, num_classes]
    assert model.output_shape == (None, num_classes)
    assert len(shapes) > 20
    # tf_slim's resnet_v2 also collects each block's output (its last unit's) and the softmax "predictions"
    extra = {"logits", "predictions"} | {f"{name}/block{i}" for i in range(1, 5)}
    for key, shape in shapes.items():
        if key in extra:
            continue
        layer = model.get_layer(layer_name(key[len(name) + 1:]))
        assert list(layer.output_shape[1:]) == shape[1:], key
    assert shapes[f"{name}/conv1"][1] == -(-size // 2)
    assert shapes[f"{name}/block4/unit_3/{unit_scope(name)}"][1:] == [-(-size // 32), -(-size // 32), 2048]


COUNTED = [param(n, size, classes) for n in RESNETS for size, classes in SIZES
           if size == 32 or not n.endswith(SMALL_ONLY)]


@pytest.mark.parametrize("name, size, num_classes", COUNTED)
def test_parameter_counts_equal_designs_numbers(name, size, num_classes):
    variables, _, model = built(name, size, num_classes)
    total_1000, trainable_1000, total_10 = RESNET_COUNTS[name]
    legacy_total = sum(int(np.prod(s)) for s, _ in variables.values())
    legacy_trainable = sum(int(np.prod(s)) for s, t in variables.values() if t)
    modern_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    modern_total = modern_trainable + sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    expected_total = total_1000 if num_classes == 1000 else total_10
    assert legacy_total == modern_total == expected_total
    # the non-trainable part (BN moving statistics) does not depend on the number of classes
    assert legacy_total - legacy_trainable == modern_total - modern_trainable == total_1000 - trainable_1000


def test_the_hand_counts_differ_by_the_head_between_1000_and_10_classes():
    """What lets the 101s and 152s be built at 10 classes only: at 1000 a net has 990 more logits, each of 2048
    weights and a bias (the non-trainable part, which does not depend on the classes, is held at 10 classes by
    test_parameter_counts_equal_designs_numbers)."""
    for name, (total_1000, _, total_10) in RESNET_COUNTS.items():
        assert total_1000 - total_10 == 990 * 2049, name


@pytest.mark.parametrize("name", RESNET_PARAMS)
def test_every_legacy_variable_maps_to_exactly_one_modern_weight_and_back(name):
    variables, _, model = built(name, 32, 10)
    weights = weight_names(model)
    assert set(weights) == set(variables)
    for var, (shape, trainable) in variables.items():
        assert weights[var].shape.as_list() == shape, var
        assert weights[var].trainable == trainable, var
        model_name, layer, weight = modern_name(var)
        assert model_name == name
        assert any(w is weights[var] for w in model.get_layer(layer).weights)
        assert weights[var].name.split(":")[0] == f"{layer}/{weight}"


@pytest.mark.parametrize("name", [param(n) for n in RESNETS if n.startswith("resnet_v1_")])
def test_legacy_resnet_v1_has_exactly_tf_slims_variables(name):
    from tf_slim.nets import resnet_v1
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [1, 32, 32, 3])
        with legacy.resnet.slim.arg_scope(resnet_v1.resnet_arg_scope()):
            getattr(resnet_v1, name)(images, num_classes=10, is_training=True)
        theirs = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
    ours, _, _ = built(name, 32, 10)
    assert {k: s for k, (s, _) in ours.items()} == theirs


# both families at 50 and the article's at 101: resnet_v1_101 adds no unit or name rule (45 s of the suite's budget)
@pytest.mark.parametrize("name", ["jianshu_resnet_50", pytest.param("resnet_v1_50", marks=pytest.mark.slow),
                                  pytest.param("jianshu_resnet_101", marks=pytest.mark.slow),
                                  pytest.param("resnet_v2_50", marks=pytest.mark.slow)])
def test_legacy_checkpoint_gives_the_same_logits_in_the_modern_model(name, tmp_path):
    images = np.random.default_rng(1).uniform(0, 1, (8, 64, 64, 3)).astype(np.float32)
    prefix, inference, training, _ = legacy_run(name, images, 10, tmp_path)
    assert inference.std() > 0.1 and training.std() > 0.1  # not a trivial pass on near-constant logits

    model = modern.build(name, 10, input_shape=(64, 64, 3))
    load(model, prefix)
    got_inference = model(images, training=False).numpy()
    got_training = model(images, training=True).numpy()
    assert max_relative_error(got_inference, inference) <= 1e-5
    assert max_relative_error(got_training, training) <= 1e-4

    # the guards: one perturbed weight fails the same comparison...
    kernel = model.get_layer(f"block1__unit_1__{unit_scope(name)}__conv2").kernel
    perturbed = kernel.numpy()
    perturbed.flat[1000] += 0.5
    kernel.assign(perturbed)
    assert max_relative_error(model(images, training=False).numpy(), inference) > 1e-5
    # ...and a checkpoint with one renamed variable does not load
    renamed = rename_variable(prefix, f"{name}/logits/biases", f"{name}/logits/bias", str(tmp_path / "renamed"))
    with pytest.raises(UserError, match=r"missing: .*logits/biases.*unexpected: .*logits/bias"):
        load(model, renamed)


def test_depth_filling_puts_zeros_around_the_input_in_both_halves():
    from legacy.resnet import depth_filling
    from modern.kit import DepthFilling
    x = np.random.default_rng(2).normal(size=(2, 4, 4, 64)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        filled_legacy = sess.run(depth_filling(tf.constant(x), 256))
    filled_modern = DepthFilling(256)(x).numpy()
    for filled in (filled_legacy, filled_modern):
        assert filled.shape == (2, 4, 4, 256)
        assert not filled[..., :96].any() and not filled[..., 160:].any()
        np.testing.assert_array_equal(filled[..., 96:160], x)


CRASH_REPRO = """
    import numpy as np, tensorflow as tf, tf_keras as keras
    from tf_keras import layers
    x = keras.Input((8, 8, 64))
    pad = layers.Lambda(lambda t: tf.pad(t, [[0, 0], [0, 0], [0, 0], [96, 96]]))(x)
    y = layers.ReLU()(layers.Add()([layers.Conv2D(256, 1)(x), pad]))
    keras.Model(x, y).predict(np.ones((2, 8, 8, 64), np.float32), verbose=0)
"""

MODERN_STEP = """
    import numpy as np, tf_keras as keras, modern
    model = modern.build("jianshu_resnet_50", 10, input_shape=(32, 32, 3))
    x = np.random.rand(8, 32, 32, 3).astype("float32")
    assert model.predict(x, verbose=0).shape == (8, 10)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, np.arange(8) % 10, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
"""

LEGACY_STEP = """
    import numpy as np, legacy
    from legacy.slim_compat import tf
    graph = tf.Graph()
    with graph.as_default():
        images, labels = tf.placeholder(tf.float32, [4, 32, 32, 3]), tf.placeholder(tf.int64, [4])
        logits, _ = legacy.build("jianshu_resnet_50", images, 10, is_training=True)
        loss = tf.losses.sparse_softmax_cross_entropy(labels, logits) + tf.losses.get_regularization_loss()
        with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
            train = tf.train.MomentumOptimizer(0.01, 0.9).minimize(loss)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            feed = {images: np.random.rand(4, 32, 32, 3), labels: np.arange(4)}
            for _ in range(2):
                sess.run(train, feed)
            assert np.isfinite(sess.run(loss, feed))
"""


def run_python(code):
    env = {"TF_ENABLE_ONEDNN_OPTS": "1", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("half, code", [("modern", MODERN_STEP), ("legacy", LEGACY_STEP)])
def test_each_halfs_jianshu_resnet_50_runs_forward_and_a_training_step_with_onednn(half, code):
    proc = run_python(code)  # a subprocess: a segfault fails this test instead of killing the suite
    assert proc.returncode == 0, f"{half} exited {proc.returncode}: {proc.stderr[-2000:]}"


@pytest.mark.slow
def test_the_onednn_crash_that_depth_filling_avoids_is_still_there():
    """If this fails, TensorFlow fixed the crash and DepthFilling could use tf.pad like the article."""
    assert run_python(CRASH_REPRO).returncode == -11


def test_import_legacy_works_in_a_fresh_interpreter_without_environment():
    proc = subprocess.run([sys.executable, "-c", "import legacy, modern; print(len(legacy.list_models()))"],
                          cwd=REPO, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_batch_norm_decay_reaches_every_bn_layer_in_both_halves():
    graph = tf.Graph()
    with graph.as_default():
        legacy.build("jianshu_resnet_50", tf.placeholder(tf.float32, [2, 32, 32, 3]), 10, batch_norm_decay=0.9)
        bn_layers = {v.op.name.rsplit("/", 1)[0] for v in tf.global_variables() if v.op.name.endswith("moving_mean")}
        # each moving-average update computes "1 - decay" as .../AssignMovingAvg{,_1}/sub from constants
        with tf.Session(graph=graph) as sess:
            rates = sess.run([op.outputs[0] for op in graph.get_operations()
                              if op.type == "Sub" and op.name.rsplit("/", 2)[-2].startswith("AssignMovingAvg")
                              and op.name.endswith("/sub")])
    assert len(bn_layers) == 33 and len(rates) == 2 * len(bn_layers)  # moving mean and variance of each
    np.testing.assert_allclose(rates, 0.1, rtol=1e-6)
    model = modern.build("jianshu_resnet_50", 10, input_shape=(32, 32, 3), batch_norm_decay=0.9)
    momenta = [layer.momentum for layer in model.submodules if "BatchNorm" in type(layer).__name__]
    assert len(momenta) == 33 and set(momenta) == {0.9}
    default = modern.build("jianshu_resnet_50", 10, input_shape=(32, 32, 3))
    assert sorted({layer.momentum for layer in default.layers if "BatchNorm" in type(layer).__name__}) == [0.99, 0.997]
