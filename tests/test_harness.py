"""TF1's harness idioms against their TF2 twins (legacy/harness.py, modern/harness.py): hooks and callbacks,
streaming metrics, summaries, flags.

Both halves train the same tiny net from the same first weights on the same batches, once for the whole module;
the tests compare what each side recorded, logged, saved and summarised, with each other and with numpy.
"""

import io
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import QUIET_TF, REPO, tolerance
from legacy import harness as legacy_harness
from modern import harness as modern_harness

STEPS, SAVE_STEPS, BATCH, LR, DECAY = 6, 2, 4, 0.1, 0.9
# where each TF1 variable sits in the modern checkpoint: TF2 checkpoints key by the object graph (the model's
# weighted layers in order), not by variable name
MODERN_KEYS = {"conv1/weights": "model/layer_with_weights-0/kernel",
               "conv1/biases": "model/layer_with_weights-0/bias",
               "logits/weights": "model/layer_with_weights-1/kernel",
               "logits/biases": "model/layer_with_weights-1/bias",
               "global_step": "optimizer/_iterations"}
HALVES = {"legacy": legacy_harness, "modern": modern_harness}


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{half: (model dir, RecordLoss records, logged loss lines)}``: each half trained STEPS steps on the tiny
    problem, a checkpoint, summaries and a log line every SAVE_STEPS steps."""
    images, labels, initial = legacy_harness.tiny_problem()
    logger, out = tf.get_logger(), {}
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        for name, half in HALVES.items():
            model_dir, lines = tmp_path_factory.mktemp(name), Lines()
            logger.addHandler(lines)
            try:
                records = half.train(images, labels, initial, str(model_dir), train_steps=STEPS, batch_size=BATCH,
                                     learning_rate=LR, decay=DECAY, save_steps=SAVE_STEPS)
            finally:
                logger.removeHandler(lines)
            out[name] = model_dir, records, [line for line in lines.lines if line.startswith("loss = ")]
    finally:
        logger.setLevel(level)
    return out


# --- numpy references ------------------------------------------------------------------------------------------

def numpy_logits(weights, images):
    """The tiny net in numpy: 3x3 SAME conv + ReLU, 2x2 max pool, dense (flattened in NHWC order)."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = sum(np.einsum("nhwc,co->nhwo", padded[:, i:i + 8, j:j + 8], weights["conv1/weights"][i, j])
               for i in range(3) for j in range(3)) + weights["conv1/biases"]
    relu = np.maximum(conv, 0)
    pooled = relu.reshape(len(images), 4, 2, 4, 2, 4).max(axis=(2, 4))
    return pooled.reshape(len(images), -1) @ weights["logits/weights"] + weights["logits/biases"]


def numpy_cross_entropy(logits, labels):
    """Per-example softmax cross-entropy."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]


def checkpoint_values(half, model_dir, step):
    """``{TF1 name: value}`` of ``model.ckpt-<step>`` (the modern one read through MODERN_KEYS)."""
    reader = tf.train.load_checkpoint(os.path.join(model_dir, f"model.ckpt-{step}"))
    keys = {n: n for n in MODERN_KEYS} if half == "legacy" else {
        n: k + "/.ATTRIBUTES/VARIABLE_VALUE" for n, k in MODERN_KEYS.items()}
    return {name: reader.get_tensor(key) for name, key in keys.items()}


# --- hooks ---------------------------------------------------------------------------------------------------

def test_the_custom_hook_and_its_callback_see_the_same_steps_and_losses(runs):
    legacy_records, modern_records = runs["legacy"][1], runs["modern"][1]
    assert [s for s, _ in legacy_records] == [s for s, _ in modern_records] == list(range(1, STEPS + 1))
    np.testing.assert_allclose([x for _, x in modern_records], [x for _, x in legacy_records],
                               rtol=tolerance("harness six steps"))
    # independently: the loss of step s is numpy's loss of batch s-1 on the weights saved at step s-1
    images, labels, _ = legacy_harness.tiny_problem()
    for half, (model_dir, records, _) in runs.items():
        for step, loss in records:
            if (step - 1) % SAVE_STEPS == 0:
                batch = slice((step - 1) * BATCH, step * BATCH)
                logits = numpy_logits(checkpoint_values(half, model_dir, step - 1), images[batch])
                assert loss == pytest.approx(numpy_cross_entropy(logits, labels[batch]).mean(), rel=1e-4), (half, step)


def test_logging_hook_and_callback_log_the_same_steps(runs):
    for model_dir, records, lines in runs.values():
        logged_steps = [s for s, _ in records if (s - 1) % SAVE_STEPS == 0]  # the first step, then every n-th
        assert lines == [f"loss = {x:.6f}" for s, x in records if s in logged_steps] and len(lines) == 3
    assert [float(line.split()[-1]) for line in runs["legacy"][2]] == pytest.approx(
        [float(line.split()[-1]) for line in runs["modern"][2]], rel=1e-4)


def test_checkpoints_are_saved_at_the_same_steps_with_the_same_weights(runs):
    _, _, initial = legacy_harness.tiny_problem()
    saved = {}
    for half, (model_dir, _, _) in runs.items():
        steps = sorted(int(m.group(1)) for f in os.listdir(model_dir)
                       if (m := re.fullmatch(r"model\.ckpt-(\d+)\.index", f)))
        assert steps == [0, 2, 4, 6], half  # step 0 too: CheckpointSaverHook saves when the session is created
        assert tf.train.latest_checkpoint(str(model_dir)).endswith("model.ckpt-6")
        saved[half] = {step: checkpoint_values(half, model_dir, step) for step in steps}
        for name, value in initial.items():
            np.testing.assert_array_equal(saved[half][0][name], value, err_msg=(half, name))
    for step in (2, 4, 6):
        assert saved["legacy"][step]["global_step"] == saved["modern"][step]["global_step"] == step
        for name in initial:  # of the array's largest value, as tests/helpers.py FLOORS measures it
            difference = np.max(np.abs(saved["modern"][step][name] - saved["legacy"][step][name]))
            assert difference <= tolerance("harness six steps") * np.max(np.abs(saved["legacy"][step][name])), name
        assert not np.allclose(saved["legacy"][step]["conv1/weights"], initial["conv1/weights"])  # it did train


# --- metrics -------------------------------------------------------------------------------------------------

def test_streaming_metrics_equal_numpy_over_batches_of_different_sizes():
    rng = np.random.default_rng(7)
    batches = [(rng.normal(0, 2, (n, 3)).astype(np.float32), rng.integers(0, 3, n)) for n in (5, 9, 2, 6)]
    logits = np.concatenate([b[0] for b in batches]).astype(np.float64)
    labels = np.concatenate([b[1] for b in batches])
    predictions = logits.argmax(axis=1)
    top2 = np.argsort(-logits, axis=1)[:, :2]
    expected = {"accuracy": np.mean(predictions == labels),
                "mean_loss": numpy_cross_entropy(logits, labels).mean(),
                "recall_at_2": np.mean((top2 == labels[:, None]).any(axis=1)),
                "confusion_matrix": np.zeros((3, 3), int)}
    np.add.at(expected["confusion_matrix"], (labels, predictions), 1)
    assert 0.2 < expected["accuracy"] < expected["recall_at_2"] < 1  # the numbers tell the metrics apart
    for half in HALVES.values():
        got = half.streaming_metrics(batches, k=2)
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-6, err_msg=(half.__name__, name))
    # a batch-by-batch mean of the batches' accuracies would differ: the metrics weight by examples
    assert abs(np.mean([np.mean(b[0].argmax(1) == b[1]) for b in batches]) - expected["accuracy"]) > 0.01


def test_top_k_ties_tf1_recall_breaks_them_by_index_keras_counts_them_as_hits():
    logits = np.array([[1, 1, 0], [0, 2, 2], [3, 3, 3], [0, 1, 2]], np.float32)  # ReLU'd or saturated outputs
    labels = np.array([1, 1, 2, 0])
    for k in (1, 2):
        broken = np.argsort(-logits, axis=1, kind="stable")[:, :k]  # the lower index wins a tie
        tf1 = np.mean((broken == labels[:, None]).any(axis=1))
        keras_ = np.mean((logits > logits[np.arange(4), labels][:, None]).sum(axis=1) < k)  # fewer than k above
        assert legacy_harness.streaming_metrics([(logits, labels)], k=k)[f"recall_at_{k}"] == pytest.approx(tf1)
        assert modern_harness.streaming_metrics([(logits, labels)], k=k)[f"recall_at_{k}"] == pytest.approx(keras_)
        assert (tf1, keras_) == ((0.25, 0.75), (0.5, 0.75))[k - 1]
    # accuracy (argmax, the first of the tied) agrees: 1 of 4 on both sides
    assert legacy_harness.streaming_metrics([(logits, labels)])["accuracy"] == pytest.approx(0.25)
    assert modern_harness.streaming_metrics([(logits, labels)])["accuracy"] == pytest.approx(0.25)


# --- summaries -----------------------------------------------------------------------------------------------

def summaries(model_dir):
    """``{step: {tag: value}}`` from the event files of ``model_dir/logs/train``; TF1's per-image tags
    (``input/image/<i>``) gathered under TF2's one tag (``input``) as a list."""
    found = {}
    folder = os.path.join(model_dir, "logs", "train")
    for name in sorted(os.listdir(folder)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            for value in event.summary.value:
                tag = re.sub(r"/image/\d+$", "", value.tag)
                tags = found.setdefault(event.step, {})
                kind = value.WhichOneof("value")
                if kind == "image":
                    tags.setdefault(tag, []).append(value.image.encoded_image_string)
                else:
                    tags[tag] = tf.make_ndarray(value.tensor) if kind == "tensor" else getattr(value, kind)
    return found


def pixels(png):
    return np.asarray(Image.open(io.BytesIO(png)), dtype=np.float64)


def test_summaries_have_the_same_tags_at_the_same_steps(runs):
    legacy_dir, legacy_records, _ = runs["legacy"]
    modern_dir = runs["modern"][0]
    legacy_sums, modern_sums = summaries(legacy_dir), summaries(modern_dir)
    legacy_sums = {s: tags for s, tags in legacy_sums.items() if tags}  # SessionLog events carry no summary
    # the TensorBoard callback's own scalars: running means after steps 2, 4, 6 and per epoch (step = epoch 0)
    keras_own = {s: {t for t in tags if t.startswith(("batch_", "epoch_"))} for s, tags in modern_sums.items()}
    assert keras_own == {0: {"epoch_loss", "epoch_step_loss", "epoch_learning_rate"}, 1: set(), 3: set(), 5: set(),
                         2: {"batch_loss", "batch_step_loss"}, 4: {"batch_loss", "batch_step_loss"},
                         6: {"batch_loss", "batch_step_loss"}}
    modern_sums = {s: {t: v for t, v in tags.items() if not t.startswith(("batch_", "epoch_"))}
                   for s, tags in modern_sums.items() if s % 2}
    tags = {"loss", "learning_rate", "input", "weights/conv1/weights", "weights/conv1/biases",
            "weights/logits/weights", "weights/logits/biases"}
    assert {s: set(t) for s, t in legacy_sums.items()} == {s: set(t) for s, t in modern_sums.items()} == {
        1: tags, 3: tags, 5: tags}
    images, _, _ = legacy_harness.tiny_problem()
    losses = dict(legacy_records)
    for step in (1, 3, 5):
        old, new = legacy_sums[step], modern_sums[step]
        assert old["loss"] == pytest.approx(float(new["loss"]), rel=1e-4) == pytest.approx(losses[step], rel=1e-4)
        assert old["learning_rate"] == pytest.approx(float(new["learning_rate"]), rel=1e-6) == pytest.approx(
            LR * DECAY ** (step - 1), rel=1e-6)  # the rate that made the step
        # the first 3 images of the step's batch: TF2 writes x * 255; TF1 rescales each image to its own maximum
        batch = images[(step - 1) * BATCH:(step - 1) * BATCH + 3].astype(np.float64)
        width, height, *pngs = new["input"]
        assert (int(width), int(height)) == (8, 8) and len(pngs) == len(old["input"]) == 3
        for x, png_new, png_old in zip(batch, pngs, old["input"]):
            assert np.abs(pixels(png_new) - x * 255).max() <= 1
            assert np.abs(pixels(png_old) - x * 255 / x.max()).max() <= 1
        for name in ("conv1/weights", "logits/biases"):
            assert old[f"weights/{name}"].num == new[f"weights/{name}"][:, 2].sum() == np.prod(
                legacy_harness.tiny_problem()[2][name].shape)


# --- flags ---------------------------------------------------------------------------------------------------

def run_module(module, *args, status=0):
    """``python -m module args`` from the repository root, TensorFlow's C++ logs quiet; its stdout."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **QUIET_TF})
    assert proc.returncode == status, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_flags_and_argparse_run_the_same_training(runs, tmp_path):
    outputs = {"legacy": run_module("legacy.harness", "--train_steps", "3", "--learning_rate", "0.05",
                                    "--model_dir", str(tmp_path / "legacy")),
               "modern": run_module("modern.harness", "--train-steps", "3", "--learning-rate", "0.05",
                                    "--model-dir", str(tmp_path / "modern"))}
    images, labels, _ = legacy_harness.tiny_problem()
    last = {}
    for half, out in outputs.items():
        match = re.fullmatch(rf"{half} harness: step (\d+) loss ([\d.]+)\n", out)
        assert match, out
        step, last[half] = int(match.group(1)), float(match.group(2))
        assert step == 3
        # independently: numpy's loss of the third batch on the weights the run saved at step 2
        logits = numpy_logits(checkpoint_values(half, tmp_path / half, 2), images[2 * BATCH:3 * BATCH])
        assert last[half] == pytest.approx(numpy_cross_entropy(logits, labels[2 * BATCH:3 * BATCH]).mean(), abs=2e-6)
    assert last["legacy"] == pytest.approx(last["modern"], rel=1e-4)
    # the flags took effect: the module's runs (learning rate 0.1) lost something else at step 3
    assert abs(dict(runs["legacy"][1])[3] - last["legacy"]) > 0.01


FLAGS = ("train_steps", "batch_size", "learning_rate", "learning_rate_decay_factor", "save_steps", "model_dir")


@pytest.mark.slow
def test_help_lists_the_flags(capsys):
    legacy_help = run_module("legacy.harness", "--help", status=1)  # absl's --help exits with 1, argparse's with 0
    with pytest.raises(SystemExit) as exit_:
        modern_harness.parse_args(["--help"])  # what ``python -m modern.harness --help`` runs, in this process
    assert exit_.value.code == 0
    modern_help = capsys.readouterr().out
    for flag in FLAGS:
        assert f"--{flag}" in legacy_help, flag
        assert f"--{flag.replace('_', '-')}" in modern_help, flag
