"""Checkpoints across the halves (docs/DESIGN.md §5-§7): conversion both ways, fine-tuning, and the same training.

Every comparison is between two independently built things: a legacy graph (or tf_slim's own graph) and the
modern model, each doing its own computation from the same saved numbers.
"""


import numpy as np
import pytest

from core import checkpoints
from core.run_dir import Run
from helpers import (CLASSES, IMPLS, ONE_STEP, TINY_MODEL, assert_user_error, legacy_run, max_relative_error,
                     random_values, read_run, rename_variable, run_script, set_values, shape_image, tolerance,
                     train_run)
from legacy.slim_compat import slim, tf
from modern import naming

IMAGES = np.random.default_rng(1).uniform(0, 1, (8, 64, 64, 3)).astype(np.float32)


def slim_checkpoint(folder, num_classes, images=None, seed=0):
    """A checkpoint written by ``tf_slim.nets.resnet_v1.resnet_v1_50`` itself (random weights, Saver).

    Returns its folder and, when ``images`` are given, the logits of tf_slim's graph (inference mode).
    """
    from tf_slim.nets import resnet_v1
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, None, None, 3])
        with slim.arg_scope(resnet_v1.resnet_arg_scope()):
            logits, _ = resnet_v1.resnet_v1_50(x, num_classes=num_classes, is_training=False)
        tf.train.get_or_create_global_step()
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            set_values(sess, random_values([v for v in tf.global_variables() if v.op.name != "global_step"], rng))
            folder.mkdir(parents=True)
            tf.train.Saver().save(sess, str(folder / "model.ckpt"), global_step=0, write_meta_graph=False)
            out = sess.run(logits, {x: images}).reshape(len(images), -1) if images is not None else None
    return folder, out


def convert(src, out, *extra):
    proc = run_script("convert_checkpoint.py", src, "--out", out, *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def modern_predictor(run_dir):
    from modern.weights import Predictor
    return Predictor(Run.read(run_dir))


# --- TF1 checkpoints -> modern ----------------------------------------------------------------------------

def check_converted(src, reference, tmp_path, *extra):
    """Convert ``src`` to a modern run and compare its logits on IMAGES with ``reference``, with the guards."""
    assert reference.std() > 0.1  # not a trivial pass on near-constant logits
    run_dir = convert(src, tmp_path / "converted", "--image-size", 64, *extra)
    run = read_run(run_dir)
    assert run["impl"] == "modern" and run["state"] == "converted" and run["num_classes"] == reference.shape[1]
    predictor = modern_predictor(run_dir)
    assert max_relative_error(predictor(IMAGES), reference) <= 1e-5
    # the guard: one perturbed weight fails the same comparison
    kernel = predictor.model.get_layer([n for n in (layer.name for layer in predictor.model.layers)
                                        if n.startswith("block1__unit_1__") and n.endswith("conv2")][0]).kernel
    perturbed = kernel.numpy()
    perturbed.flat[1000] += 0.5
    kernel.assign(perturbed)
    assert max_relative_error(predictor(IMAGES), reference) > 1e-5
    return run


@pytest.mark.parametrize("name", ["jianshu_resnet_50", pytest.param("resnet_v1_50", marks=pytest.mark.slow)])
def test_a_legacy_checkpoint_converts_to_a_modern_run_with_the_same_logits(name, tmp_path):
    prefix, inference, _, _ = legacy_run(name, IMAGES, 10, tmp_path)
    run = check_converted(prefix, inference, tmp_path)
    assert run["model"] == name and run["labels"] == [str(i) for i in range(10)]  # both read from the checkpoint
    # the other guard: a checkpoint with one renamed variable is refused, naming it
    renamed = rename_variable(prefix, f"{name}/logits/biases", f"{name}/logits/bias", str(tmp_path / "renamed"))
    proc = run_script("convert_checkpoint.py", renamed, "--out", tmp_path / "refused", "--model", name)
    assert_user_error(proc, "missing:", f"{name}/logits/biases", "unexpected:", f"{name}/logits/bias")
    assert not (tmp_path / "refused").exists() and not list(tmp_path.glob(".refused*"))


@pytest.mark.slow
def test_a_checkpoint_written_by_tf_slims_own_resnet_v1_50_gives_the_same_logits(tmp_path):
    folder, reference = slim_checkpoint(tmp_path / "slim", 10, IMAGES)
    run = check_converted(folder, reference, tmp_path, "--labels", write_lines(tmp_path / "names.txt", 10))
    assert run["model"] == "resnet_v1_50" and run["labels"][3] == "class three"
    # the other guard: tf_slim's checkpoint with one variable renamed is refused, naming it
    old = "resnet_v1_50/block2/unit_1/bottleneck_v1/conv1/weights"
    renamed = rename_variable(tf.train.latest_checkpoint(str(folder)), old, old.replace("weights", "kernel"),
                              str(tmp_path / "renamed"))
    proc = run_script("convert_checkpoint.py", renamed, "--out", tmp_path / "refused", "--model", "resnet_v1_50")
    assert_user_error(proc, "missing:", old, "unexpected:", old.replace("weights", "kernel"))


def write_lines(path, n):
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    path.write_text("".join(f"class {w}\n" for w in words[:n]))
    return path


# --- modern -> legacy -> modern ---------------------------------------------------------------------------

def h5_values(path):
    return checkpoints.read(str(path), "m")[0]


@pytest.mark.slow
def test_modern_to_legacy_and_back_is_bit_identical_and_legacy_predicts_the_same(runs, tiny, tmp_path):
    source = runs["modern"]
    legacy_dir = convert(source, tmp_path / "as-legacy")
    assert read_run(legacy_dir)["impl"] == "legacy" and read_run(legacy_dir)["labels"] == CLASSES
    back = convert(legacy_dir, tmp_path / "back")
    original, returned = h5_values(source / "best.h5"), h5_values(back / "best.h5")
    saved_by_legacy = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(legacy_dir / "ckpt" / "best")))
    in_legacy = checkpoints.model_variables(saved_by_legacy.get_variable_to_shape_map(), TINY_MODEL)
    assert sorted(original) == sorted(returned) and len(original) == len(in_legacy) > 100
    for name, value in original.items():
        assert returned[name].dtype == value.dtype and np.array_equal(returned[name], value), name

    # legacy restores it (its own Saver, its own graph) and predicts what the modern run predicts
    from legacy.weights import Predictor as LegacyPredictor
    from modern.weights import Predictor as ModernPredictor
    images = np.random.default_rng(2).uniform(0, 1, (8, 32, 32, 3)).astype(np.float32)
    reference = ModernPredictor(Run.read(source))(images)
    assert reference.std() > 0.1
    assert max_relative_error(LegacyPredictor(Run.read(legacy_dir))(images), reference) <= 1e-5

    # and the scripts accept the converted run
    image = next((tiny[0] / CLASSES[0]).iterdir())
    answers = {}
    for run_dir in (source, legacy_dir):
        proc = run_script("use_model.py", image, "--run-dir", run_dir, "--top-k", 1)
        assert proc.returncode == 0, proc.stderr[-2000:]
        answers[run_dir.name] = proc.stdout.split("\t")[1]
    assert len(set(answers.values())) == 1
    proc = run_script("train.py", "--impl", "legacy", "--data", tiny[1], "--run-dir", legacy_dir, "--image-size", 32)
    assert_user_error(proc, "converted", "--init-from")


@pytest.mark.slow
def test_conversion_errors_are_one_line(runs, tmp_path):
    assert_user_error(run_script("convert_checkpoint.py", tmp_path / "nothing", "--out", tmp_path / "o"),
                      "nothing", "no such")
    assert_user_error(run_script("convert_checkpoint.py", runs["modern"], "--out", runs["legacy"]),
                      "not an empty folder")
    assert_user_error(run_script("convert_checkpoint.py", runs["modern"], "--out", tmp_path / "o",
                                 "--labels", write_lines(tmp_path / "l.txt", 4)), "4 labels", "3 classes")
    assert_user_error(run_script("convert_checkpoint.py", runs["modern"] / "best.h5", "--out", tmp_path / "o"),
                      "--model")
    assert not (tmp_path / "o").exists()


# --- training: one step and ten (docs/DESIGN.md §7.3) --------------------------------------------------------------

BATCH, SIZE = 16, 32


def batches(count, seed):
    """``count`` batches of the tiny pictures with their true labels."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        labels = rng.integers(0, len(CLASSES), BATCH)
        images = [np.asarray(shape_image(CLASSES[c], int(rng.integers(1 << 30)))) for c in labels]
        out.append((np.stack(images).astype(np.float32) / 255, labels.astype(np.int64)))
    return out


def parity_run(name, lr):
    """What train.py would record, at a constant learning rate (TF1 Momentum = Keras SGD momentum only then)."""
    return Run.in_memory("parity", name, len(CLASSES), SIZE, lr=lr, learning_rate_decay_type="fixed", momentum=0.9,
                         batch_norm_decay=0.9)


def legacy_training(run, data, start=None, seed=0):
    """Legacy's own training graph over ``data`` from ``start`` (default: its own initial values).

    Returns ``(initial values, values after the first step, values at the end, the loss of each step)``.
    """
    from legacy.train import training_graph
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        x = tf.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3])
        y = tf.placeholder(tf.int64, [BATCH])
        _, loss, _, train_op = training_graph(run, x, y, decay_steps=1)
        variables = [v for v in tf.global_variables() if checkpoints.model_variables([v.op.name], run.model)]
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            if start:
                set_values(sess, {v: start[v.op.name] for v in variables})
            snapshots, losses = [sess.run(variables)], []
            for images, labels in data:
                losses.append(sess.run([train_op, loss], {x: images, y: labels})[1])
                if len(losses) == 1 or len(losses) == len(data):
                    snapshots.append(sess.run(variables))
    initial, after_one, final = ({v.op.name: a for v, a in zip(variables, s)} for s in
                                 (snapshots[0], snapshots[1], snapshots[-1]))
    return initial, after_one, final, np.array(losses)


def modern_training(run, data, start):
    """The same from modern's own compiled model (``fit``'s train function, via ``train_on_batch``)."""
    from modern.train import compiled_model
    model = compiled_model(run, decay_steps=1)
    naming.assign(model, start)
    weights = naming.weight_names(model)
    losses, after_one = [], None
    for images, labels in data:
        losses.append(model.train_on_batch(images, labels, return_dict=True)["loss"])
        after_one = after_one or {n: w.numpy() for n, w in weights.items()}
    return after_one, np.array(losses)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jianshu_resnet_50", "resnet_v1_50"])
def test_one_training_step_is_the_same_in_both_halves(name):
    # one step from the network's own initial values, at a rate that moves the weights well clear of the tolerance
    run, data = parity_run(name, lr=0.05), batches(1, seed=3)
    initial, legacy_one, _, legacy_loss = legacy_training(run, data)
    modern_one, modern_loss = modern_training(run, data, initial)
    assert sorted(modern_one) == sorted(legacy_one)
    assert abs(modern_loss[0] - legacy_loss[0]) <= ONE_STEP * abs(legacy_loss[0])
    moved = {}
    for n, reference in legacy_one.items():
        scale = np.max(np.abs(reference))
        assert np.max(np.abs(modern_one[n] - reference)) <= ONE_STEP * scale, n
        moved[n] = np.max(np.abs(reference - initial[n])) > 100 * ONE_STEP * scale
    # the guard: the step moved every kernel and every BN moving statistic, and most of the rest (the deep
    # BN scales and offsets get small gradients), by more than 100x the tolerance
    assert all(moved[n] for n in moved if n.endswith(("weights", "moving_mean", "moving_variance")))
    assert sum(moved.values()) >= 0.8 * len(moved), (sum(moved.values()), len(moved))


@pytest.mark.slow
def test_ten_training_steps_from_warm_weights_are_the_same_in_both_halves():
    # the first steps from scratch are chaotic in float32 (gradient norm ~500, and a 1e-7 change of the weights
    # changes the next gradients by ~3% through the batch-norm backward pass), so that no two programs, nor one
    # program twice with 1e-7 noise, agree on them: ten steps from weights that have trained 20. resnet_v1_50 is
    # still chaotic there (every way of measuring its floor gives 1.6e-2 of the loss, 100x this net's), so that
    # its ten steps would show little for a minute of the suite: one step above is its parity
    name = "jianshu_resnet_50"
    run = parity_run(name, lr=0.01)
    _, _, warm, _ = legacy_training(run, batches(20, seed=4))
    _, _, _, legacy_losses = legacy_training(run, batches(10, seed=5), start=warm)
    _, modern_losses = modern_training(run, batches(10, seed=5), warm)
    np.testing.assert_allclose(modern_losses, legacy_losses, rtol=tolerance(f"{name} ten losses"))
    assert np.ptp(legacy_losses) > 1e-2 * legacy_losses[0]  # ten different losses, not one repeated


# --- fine-tuning ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slim_three_classes(tmp_path_factory):
    return slim_checkpoint(tmp_path_factory.mktemp("slim3") / "ckpt", len(CLASSES))[0]


def correlation(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.slow
@pytest.mark.parametrize("impl,source", [("modern", "tf_slim"), ("legacy", "other half")])
def test_fine_tuning_starts_the_trunk_from_the_checkpoint_and_the_head_anew(impl, source, runs, tiny,
                                                                               slim_three_classes, tmp_path):
    """Each half fine-tunes once, and from each kind of source once: modern from a checkpoint tf_slim's own graph
    wrote, legacy from a modern run (its HDF5 weights); the other two pairs (a TF1 checkpoint into legacy, as
    tf_slim wrote it or as legacy did) add 40 s each of a 2-core CPU and no path of their own."""
    other = {"legacy": "modern", "modern": "legacy"}[impl]
    model, src = (("resnet_v1_50", slim_three_classes) if source == "tf_slim"
                  else (TINY_MODEL, runs[other]))
    run_dir = tmp_path / "tuned"
    # a rate so small that after the epoch every weight is still (nearly) what it started from: the random
    # weights of these checkpoints make gradients in the hundreds, which at 0.01 would rescale the early kernels
    proc = train_run(impl, tiny[1], run_dir, "--model", model, "--init-from", src, "--exclude-scopes", "logits",
                     "--lr", 1e-6, epochs=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = read_run(run_dir)
    start, _ = checkpoints.read(str(src), model)
    start = {n: v for n, v in start.items() if checkpoints.model_variables([n], model)}
    assert run["init_from"]["exclude_scopes"] == ["logits"]
    assert run["init_from"]["restored"] == len(start) - 2 and run["init_from"]["initialised"] == 2
    assert np.isfinite(run["epochs"][0]["loss"])

    tuned, _ = checkpoints.read(str(run_dir), model)
    trunk = [n for n in start if n.endswith("weights") and "/logits/" not in n]
    assert min(correlation(tuned[n], start[n]) for n in trunk) > 0.99
    assert abs(correlation(tuned[f"{model}/logits/weights"], start[f"{model}/logits/weights"])) < 0.5


@pytest.mark.slow
def test_fine_tuning_without_excluding_a_head_of_another_shape_is_refused(tiny, tmp_path):
    folder, _ = slim_checkpoint(tmp_path / "slim5", 5)
    proc = train_run("modern", tiny[1], tmp_path / "run", "--model", "resnet_v1_50", "--init-from", folder)
    assert_user_error(proc, "wrong shape", "resnet_v1_50/logits/weights", "--exclude-scopes")
    proc = train_run("legacy", tiny[1], tmp_path / "run2", "--exclude-scopes", "logits")
    assert_user_error(proc, "--exclude-scopes needs --init-from")
