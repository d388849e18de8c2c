"""tf_slim's Inception v1, v2 and v3 in both halves: legacy calls tf_slim's functions, modern ports them.

Every comparison is against tf_slim's own graph: its variables (names and shapes, one to one with the modern
weights), pinned parameter counts (tf_slim's own tests' totals for the bases plus the heads counted by hand, not
computed from either half), and the outputs of a checkpoint tf_slim's graph wrote after one real Momentum step (so
it also holds the optimizer's slots and ``global_step``, which the modern model must skip): logits in inference
and in training mode (BN on the batch's statistics, dropout off in both halves), v3's AuxLogits included, and the
l2 penalty. Guards: the logits spread, one perturbed weight and one renamed variable fail. Each net's checkpoint
and modern model are made once (a module-scoped fixture per net), at the net's default size: v3 at 299 only (its
auxiliary head's kernel, and so its name, follows the size; a 299 checkpoint converted at 107 pins what
convert_checkpoint.py does with that layer). All of it but the option checks is outside ``make test-fast``.
"""

import os
from types import SimpleNamespace

import numpy as np
import pytest
import tf_keras as keras

import legacy
import modern
from core import checkpoints, halves, models
from core.errors import UserError
from core.run_dir import Run
from helpers import (CLASSES, IMPLS, INCEPTION_COUNTS, QUIET_TF, aux, max_relative_error, random_value,
                     random_values, read_run, run_script, set_values, train_run)
from legacy.slim_compat import tf
from modern import naming
from modern.export import trained_model


# Non-trainable: BN's moving mean and variance, 2 per BN channel. BN follows every conv2d but the heads' and v2's
# separable stem: the stem's convolutions, then each mixed block's (the sum of its convolutions' depths, read
# from tf_slim's source), then v3's AuxLogits.
BN_CHANNELS = {
    "inception_v1": 64 + 64 + 192 + sum((368, 640, 624, 648, 664, 704, 1024, 1024, 1264)),  # 7,280
    "inception_v2": 64 + 192 + sum((480, 544, 544, 864, 896, 992, 1056, 1024, 1600, 1632)),  # 9,888
    "inception_v3": 32 + 32 + 64 + 80 + 192 + sum((464, 496, 496, 640, 1536, 1728, 1728, 1920, 1280, 3264, 3264))
                    + 128 + 768,  # 18,112
}
LAST_BLOCK = {"inception_v1": "Mixed_5c", "inception_v2": "Mixed_5c", "inception_v3": "Mixed_7c"}
STEM = {"inception_v1": "Conv2d_1a_7x7/weights", "inception_v2": "Conv2d_1a_7x7/depthwise_weights",
        "inception_v3": "Conv2d_1a_3x3/weights"}
INFERENCE_BATCH, TRAINING_BATCH = 2, 8


def has_aux(name):
    return name == "inception_v3"


def modern_model(name, num_classes, size):
    """The modern model of ``name`` with dropout off; v3's with its auxiliary head, which ``modern.build`` leaves
    out unless asked."""
    return modern.build(name, num_classes, (size, size, 3), dropout_keep_prob=1.0, aux_logits=has_aux(name))


def outputs(model, images, training):
    """``[logits]``, or ``[logits, aux logits]``, as numpy."""
    out = model(images, training=training)
    return [o.numpy() for o in (out if isinstance(out, list) else [out])]


def value(name, shape, rng):
    """``random_value``, but BN's moving statistics clearly away from their initial 0 and 1 (``random_value`` keeps
    them within about 0.2 of it): means of +-0.2 to 0.6, variances of 0.3 to 0.7 or 1.5 to 2.5."""
    if not name.endswith(("moving_mean", "moving_variance")):
        return random_value(name, shape, rng)
    up = rng.random(shape) < 0.5
    if name.endswith("moving_mean"):
        return np.where(up, 1, -1) * rng.uniform(0.2, 0.6, shape)
    return np.where(up, rng.uniform(1.5, 2.5, shape), rng.uniform(0.3, 0.7, shape))


# --- tf_slim's checkpoint ---------------------------------------------------------------------------------

@pytest.fixture(scope="module",
                params=[pytest.param(n, marks=pytest.mark.slow) for n in sorted(INCEPTION_COUNTS)])
def slim_run(request, tmp_path_factory):
    """tf_slim's graph of a net at its default size, 10 classes, random weights, trained one Momentum step (both
    heads' losses) and saved with its slots and step; what it says of the saved weights, and the modern model."""
    name = request.param
    size = models.default_input_size(name)
    images = np.random.default_rng(1).uniform(-1, 1, (TRAINING_BATCH, size, size, 3)).astype(np.float32)
    run = SimpleNamespace(name=name, scope=models.scope(name), images=images,
                          prefix=str(tmp_path_factory.mktemp(name) / "model.ckpt"))
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        logits, end_points = legacy.build(name, tf.constant(images), 10, is_training=True, dropout_keep_prob=1.0)
        variables = tf.global_variables()
        heads = [logits] + ([end_points["AuxLogits"]] if has_aux(name) else [])
        labels = tf.constant(np.arange(TRAINING_BATCH) % 10)
        loss = tf.add_n([tf.losses.sparse_softmax_cross_entropy(labels, head) for head in heads])
        step = tf.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, tf.train.get_or_create_global_step())
        penalty = tf.add_n(tf.losses.get_regularization_losses())
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            set_values(sess, {v: value(v.op.name, v.shape.as_list(), rng) for v in variables})
            sess.run(step)
            tf.train.Saver().save(sess, run.prefix, write_meta_graph=False)
            run.training, run.penalty = sess.run([heads, penalty])  # BN on the batch; update ops not run
        run.variables = {v.op.name: v.shape.as_list() for v in variables}
        run.trainable = {v.op.name for v in tf.trainable_variables()}
        run.end_points = {key: t.shape.as_list() for key, t in end_points.items()}
    graph = tf.Graph()
    with graph.as_default():
        logits, end_points = legacy.build(name, tf.constant(images[:INFERENCE_BATCH]), 10, is_training=False)
        with tf.Session(graph=graph) as sess:
            tf.train.Saver().restore(sess, run.prefix)
            run.inference = sess.run([logits] + ([end_points["AuxLogits"]] if has_aux(name) else []))
    run.values, _ = checkpoints.read(run.prefix)
    run.model = modern_model(name, 10, size)
    return run


def assert_same_variables(variables, trainable, model, total, name):
    """tf_slim's ``{variable: shape}`` (``trainable`` the trainable ones) and ``model``'s weights are one to one,
    and both hold ``total`` parameters, twice the net's BN channels of them non-trainable (moving statistics)."""
    frozen = set(variables) - trainable
    assert sum(int(np.prod(shape)) for shape in variables.values()) == total
    assert sum(int(np.prod(variables[n])) for n in frozen) == 2 * BN_CHANNELS[name]
    assert all(n.endswith(("/moving_mean", "/moving_variance")) for n in frozen)
    weights = naming.weight_names(model)
    assert {n: w.shape.as_list() for n, w in weights.items()} == variables
    assert {n for n, w in weights.items() if not w.trainable} == frozen
    assert model.count_params() == total
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 2 * BN_CHANNELS[name]


def test_counts_names_and_shapes_are_tf_slims(slim_run):
    name, model = slim_run.name, slim_run.model
    assert legacy.inception.NETS[name][0].__module__ == f"tf_slim.nets.{name}" and model.name == slim_run.scope
    total_1001, total_10 = INCEPTION_COUNTS[name]
    assert_same_variables(slim_run.variables, slim_run.trainable, model, total_10, name)
    heads = ["Logits", "Predictions"] + (["AuxLogits"] if has_aux(name) else [])
    assert {key: slim_run.end_points[key] for key in heads} == {key: [TRAINING_BATCH, 10] for key in heads}
    assert "AuxLogits" in slim_run.end_points or not has_aux(name)
    # every end point of the base is the output of the modern layer of that name, with the same shape
    base = [key for key in slim_run.end_points if key.startswith(("Conv2d", "MaxPool", "Mixed"))]
    assert len(base) >= 15
    for key in base:
        assert model.get_layer(key).output.shape.as_list()[1:] == slim_run.end_points[key][1:], key

    size = models.default_input_size(name)
    graph = tf.Graph()
    with graph.as_default():
        logits, end_points = legacy.build(name, tf.placeholder(tf.float32, [2, size, size, 3]), 1001)
        variables = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
        trainable = {v.op.name for v in tf.trainable_variables()}
    assert logits.shape.as_list() == [2, 1001] and ("AuxLogits" in end_points) == has_aux(name)
    assert_same_variables(variables, trainable, modern_model(name, 1001, size), total_1001, name)
    if has_aux(name):  # modern.build leaves the auxiliary head out: everything else is the same
        plain = modern.build(name, 1001)
        assert plain.count_params() == total_1001 - aux(1001) and plain.output.shape.as_list() == [None, 1001]
        assert ({n: w.shape.as_list() for n, w in naming.weight_names(plain).items()}
                == {n: s for n, s in variables.items() if not n.startswith(f"{slim_run.scope}/AuxLogits/")})


def test_a_checkpoint_tf_slim_wrote_gives_the_same_outputs_in_inference(slim_run):
    values, model = slim_run.values, slim_run.model
    assert values["global_step"] == 1 and any(n.endswith("/Momentum") for n in values)  # what must be skipped
    assert sorted(naming.assign(model, values)) == sorted(slim_run.variables)
    got = outputs(model, slim_run.images[:INFERENCE_BATCH], training=False)
    assert len(got) == len(slim_run.inference) == 1 + has_aux(slim_run.name)
    for out, reference in zip(got, slim_run.inference):
        assert reference.shape == (INFERENCE_BATCH, 10) and reference.std() > 0.1
        assert max_relative_error(out, reference) <= 1e-5
    assert float(sum(model.losses)) == pytest.approx(float(slim_run.penalty), rel=1e-5)  # the same l2 penalty


def test_a_checkpoint_tf_slim_wrote_gives_the_same_outputs_in_training_mode(slim_run):
    model = slim_run.model
    naming.assign(model, slim_run.values)  # the inference test's call left them; a training call moves BN's too
    got = outputs(model, slim_run.images, training=True)
    assert len(got) == len(slim_run.training) == 1 + has_aux(slim_run.name)
    for out, reference in zip(got, slim_run.training):
        assert reference.shape == (TRAINING_BATCH, 10) and reference.std() > 0.1
        assert max_relative_error(out, reference) <= 1e-4


def test_one_perturbed_weight_fails_the_comparison_and_one_renamed_variable_is_refused(slim_run):
    name, scope, model, values = slim_run.name, slim_run.scope, slim_run.model, slim_run.values
    naming.assign(model, values)
    # an inner BN's moving variance x4 halves that branch in inference (v3's logits are in the hundreds: a shift
    # of one layer's output by a constant moves them by about 1e-3 only)
    variance = naming.weight_names(model)[
        f"{scope}/{LAST_BLOCK[name]}/Branch_0/Conv2d_0a_1x1/BatchNorm/moving_variance"]
    variance.assign(variance.numpy() * 4)
    images = slim_run.images[:INFERENCE_BATCH]
    assert max_relative_error(outputs(model, images, training=False)[0], slim_run.inference[0]) > 1e-3
    old = f"{scope}/{STEM[name]}"
    new = old.replace("weights", "kernel")  # the Keras name in a TF1 checkpoint
    renamed = {(new if n == old else n): v for n, v in values.items()}
    with pytest.raises(UserError, match=rf"missing: {old} \(1\); unexpected: {new} \(1\)"):
        naming.assign(model, renamed)


# --- options ----------------------------------------------------------------------------------------------

def test_v1_and_v2_refuse_a_bn_decay_their_arg_scopes_fix_and_v1_takes_only_193_to_224():
    for name in ("inception_v1", "inception_v2"):
        for build in (lambda: legacy.build(name, None, 10, batch_norm_decay=0.9),
                      lambda: modern.build(name, 10, batch_norm_decay=0.9)):
            with pytest.raises(ValueError, match=f"{name}'s arg scope fixes its batch norm decay at 0.9997"):
                build()
    with pytest.raises(ValueError, match="193 to 224"):
        models.check_size("inception_v1", 225)
    models.check_size("inception_v1", 193)


def batch_statistics(x):
    """Mean and Bessel-corrected variance over all axes but the channels (what fused BN keeps)."""
    n = x.size // x.shape[-1]
    return x.mean((0, 1, 2)), x.var((0, 1, 2)) * n / (n - 1)


@pytest.mark.slow
def test_v3_applies_a_bn_decay_in_both_halves():
    """Decay 0: one update makes every BN layer's moving statistics its input's batch statistics."""
    size = models.spec("inception_v3").min_size
    images = np.random.default_rng(2).uniform(-1, 1, (4, size, size, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        legacy.build("inception_v3", tf.constant(images), 10, batch_norm_decay=0.0)
        # the base's ops are named under the scope twice (tf_slim re-enters it), its variables once
        norms = {op.name.replace("InceptionV3/InceptionV3/", "InceptionV3/").rsplit("/", 1)[0]: op.inputs[0]
                 for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")}
        variables = {v.op.name: v for v in tf.global_variables()}
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            inputs = {"legacy": sess.run([tf.get_collection(tf.GraphKeys.UPDATE_OPS), norms])[1]}
            moving = {"legacy": {layer: sess.run([variables[f"{layer}/moving_mean"],
                                                  variables[f"{layer}/moving_variance"]]) for layer in norms}}
    model = modern.build("inception_v3", 10, (size, size, 3), batch_norm_decay=0.0)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    scopes = [naming.scope_name(f"{model.name}/{layer.name}") for layer in bns]
    probe = keras.Model(model.input, [layer.input for layer in bns])
    inputs["modern"] = {scope: a.numpy() for scope, a in zip(scopes, probe(images, training=True))}
    model(images, training=True)
    moving["modern"] = {scope: (layer.moving_mean.numpy(), layer.moving_variance.numpy())
                        for scope, layer in zip(scopes, bns)}
    assert len(norms) == 96 and sorted(moving["modern"]) == sorted(n for n in norms if "/AuxLogits/" not in n)
    for half in ("legacy", "modern"):
        for layer, (mean, variance) in moving[half].items():
            want_mean, want_variance = batch_statistics(inputs[half][layer])
            np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-4 * np.abs(want_mean).max(),
                                       err_msg=f"{half} {layer}")
            # float32's resolution at the layer's scale too: one nearly constant channel (7e-6 of a layer whose
            # largest variance is ~1e-2) once came out 0.19% off, the rest within 1e-5
            np.testing.assert_allclose(variance, want_variance, rtol=1e-3, atol=1e-6 * np.abs(want_variance).max(),
                                       err_msg=f"{half} {layer}")
            assert np.abs(variance - 1).max() > 0.01, layer  # not the initial value: the update wrote them


# --- fine-tuning from research/slim's scope names ---------------------------------------------------------

def slim_v3_checkpoint(folder, size):
    """A checkpoint of tf_slim's inception_v3 as research/slim's: 1001 classes (random weights), built at ``size``
    (which names the auxiliary head's ``Conv2d_2a_{k}x{k}``)."""
    prefix = str(folder / "inception_v3.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        legacy.build("inception_v3", tf.placeholder(tf.float32, [None, size, size, 3]), 1001, is_training=False)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            set_values(sess, random_values(tf.global_variables(), np.random.default_rng(0)))
            tf.train.Saver().save(sess, prefix, write_meta_graph=False)
    return prefix


@pytest.fixture(scope="module")
def slim_v3_1001(tmp_path_factory):
    """research/slim's inception_v3 checkpoint, here at 107."""
    return slim_v3_checkpoint(tmp_path_factory.mktemp("v3"), 107)


HEADS = ("InceptionV3/Logits", "InceptionV3/AuxLogits")


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_fine_tuning_inception_v3_excluding_its_two_heads_restores_the_rest_and_trains(impl, slim_v3_1001, tiny,
                                                                                      tmp_path):
    run_dir = tmp_path / "tuned"
    proc = train_run(impl, tiny[1], run_dir, "--model", "inception_v3", "--image-size", 107, "--init-from",
                     slim_v3_1001, "--exclude-scopes", ",".join(HEADS), "--lr", 1e-6, epochs=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    start = {n: v for n, v in checkpoints.read(slim_v3_1001)[0].items()
             if checkpoints.model_variables([n], "InceptionV3")}
    heads = [n for n in start if n.startswith(HEADS)]
    run = read_run(run_dir)
    assert len(heads) == 12 and run["init_from"]["exclude_scopes"] == list(HEADS)
    assert run["init_from"]["restored"] == len(start) - 12 and run["init_from"]["initialised"] == 12
    assert np.isfinite(run["epochs"][0]["loss"])
    tuned, _ = checkpoints.read(str(run_dir), "InceptionV3")
    trunk = [n for n in start if n.endswith("weights") and n not in heads]
    assert min(correlation(tuned[n], start[n]) for n in trunk) > 0.99
    # the run keeps both heads, at its 3 classes (a later fine-tuning needs the auxiliary one too) ...
    assert tuned["InceptionV3/Logits/Conv2d_1c_1x1/weights"].shape[-1] == len(CLASSES)
    assert tuned["InceptionV3/AuxLogits/Conv2d_2b_1x1/weights"].shape[-1] == len(CLASSES)
    # ... and what the exports are made of predicts with the main one alone
    exported, _ = trained_model(Run.read(str(run_dir)))
    assert exported.output_shape == (None, len(CLASSES))
    assert set(naming.weight_names(exported)) == {n for n in checkpoints.model_variables(tuned, "InceptionV3")
                                                  if not n.startswith(HEADS[1])}


def correlation(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# --- converting at another size ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slim_v3_299(tmp_path_factory):
    """research/slim's inception_v3 checkpoint at its own 299: the auxiliary head's ``Conv2d_2a_5x5``."""
    return slim_v3_checkpoint(tmp_path_factory.mktemp("v3_299"), 299)


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_converting_v3_at_another_size_keeps_all_but_the_aux_kernel_that_follows_the_size(impl, slim_v3_299,
                                                                                         tmp_path):
    """At 107 the auxiliary head's map is 1x1, so tf_slim's graph has ``Conv2d_2a_1x1`` where the checkpoint has
    ``Conv2d_2a_5x5``: the conversion keeps every other variable as it is, initialises that layer, says so, and
    the run predicts exactly what tf_slim's graph at 107 restored from the checkpoint does."""
    old, new = "InceptionV3/AuxLogits/Conv2d_2a_5x5", "InceptionV3/AuxLogits/Conv2d_2a_1x1"
    env = {**os.environ, **QUIET_TF}
    if impl == "modern":  # --list's fates (the same function for both halves)
        listed = run_script("convert_checkpoint.py", slim_v3_299, "--list", "--image-size", 107, env=env)
        assert listed.returncode == 0, listed.stderr[-2000:]
        fates = {line.split()[0]: line for line in listed.stdout.splitlines()[:-1]}
        assert f"{old}/weights" in fates and fates[f"{old}/weights"].endswith(
            "left out (at 107 the layer is AuxLogits/Conv2d_2a_1x1)")
        assert fates[f"{new}/weights"].endswith("initialised (its kernel follows the image size)")
        assert "4 initialised, 4 left out" in listed.stdout and "missing" not in listed.stdout
    out = tmp_path / "run"
    proc = run_script("convert_checkpoint.py", slim_v3_299, "--out", out, "--to", impl, "--image-size", 107, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[1].startswith(
        "convert_checkpoint: AuxLogits/Conv2d_2a_5x5 left out, AuxLogits/Conv2d_2a_1x1 initialised: the auxiliary"
        " head's kernel follows the image size (107 here)")
    run = read_run(out)
    assert run["image_size"] == 107 and run["converted_from"]["initialised"] == ["AuxLogits/Conv2d_2a_1x1"]
    start = {n: v for n, v in checkpoints.read(slim_v3_299)[0].items()
             if checkpoints.model_variables([n], "InceptionV3")}
    got, _ = checkpoints.read(str(out), "InceptionV3")
    got = {n: v for n, v in got.items() if checkpoints.model_variables([n], "InceptionV3")}
    kept = [n for n in start if not n.startswith(old + "/")]
    assert len(kept) == len(start) - 4 and run["converted_from"]["variables"] == len(got) == len(start)
    assert set(got) == set(kept) | {f"{new}/{v}" for v in ("weights", "BatchNorm/beta", "BatchNorm/moving_mean",
                                                            "BatchNorm/moving_variance")}
    assert all(np.array_equal(got[n], start[n]) for n in kept)
    # the layer as tf_slim initialises it: BN at 0 / 0 / 1, the kernel trunc_normal(0.01) of the new shape
    assert got[f"{new}/weights"].shape == (1, 1, 128, 768) and 0.005 < got[f"{new}/weights"].std() < 0.01
    assert not got[f"{new}/BatchNorm/beta"].any() and not got[f"{new}/BatchNorm/moving_mean"].any()
    assert (got[f"{new}/BatchNorm/moving_variance"] == 1).all()
    # what the run predicts: tf_slim's graph at 107, restored from the 299 checkpoint (the logits never see AuxLogits)
    images = np.random.default_rng(5).uniform(-1, 1, (INFERENCE_BATCH, 107, 107, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        logits, _ = legacy.build("inception_v3", tf.constant(images), 1001, is_training=False)
        restored = [v for v in tf.global_variables() if v.op.name in start]
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver(restored).restore(sess, slim_v3_299)
            reference = sess.run(logits)
    predicted = halves.half(impl).Predictor(Run.read(str(out)))(images)
    assert reference.std() > 0.1 and max_relative_error(predicted, reference) <= 1e-5
