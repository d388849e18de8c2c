"""``--precision``: what each half computes in under mixed_bfloat16, and train.py end to end with it.

Legacy gets bfloat16 from grappler's rewrite switched on in the Session config, modern from the Keras dtype
policy the model is built under; both keep float32 weights, so the same weights can run either way.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf2

import legacy
import modern
from helpers import QUIET_TF, run_script, train_run
from legacy.slim_compat import tf
from legacy.train import session_config

NAME, SIZE, CLASSES = "jianshu_resnet_50", 32, 10


def relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32)


def test_legacy_computes_in_bfloat16_when_the_session_config_says_so(images):
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)  # the same initial weights in every Session
        x = tf.placeholder(tf.float32, images.shape)
        logits, _ = legacy.build(NAME, x, CLASSES, is_training=False)
        init = tf.global_variables_initializer()
    out = {}
    for run, precision in enumerate(("float32", "float32", "mixed_bfloat16")):
        with tf.Session(graph=graph, config=session_config(precision)) as sess:
            sess.run(init)
            out[run] = sess.run(logits, {x: images})
    assert out[2].dtype == np.float32 and out[0].std() > 0.1
    assert relative(out[1], out[0]) < 1e-6  # the same float32 graph twice
    assert 1e-4 < relative(out[2], out[0]) < 5e-2  # bfloat16 has an 8-bit mantissa


def test_modern_computes_in_bfloat16_under_the_policy_with_a_float32_head(images):
    full = modern.build(NAME, CLASSES, input_shape=(SIZE, SIZE, 3))
    mixed = modern.build(NAME, CLASSES, input_shape=(SIZE, SIZE, 3), precision="mixed_bfloat16")
    mixed.set_weights(full.get_weights())
    assert tf2.keras.mixed_precision.global_policy().name == "float32"  # build leaves the global policy alone
    assert {layer.compute_dtype for layer in mixed.layers if "conv" in layer.name} == {"bfloat16"}
    assert mixed.get_layer("logits").compute_dtype == "float32"
    assert {w.dtype for w in mixed.weights} == {tf2.float32}
    reference, result = full(images, training=False).numpy(), mixed(images, training=False)
    assert result.dtype == tf2.float32 and reference.std() > 0.1
    assert 1e-4 < relative(result.numpy(), reference) < 5e-2


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["legacy", "modern"])
def test_train_py_trains_in_mixed_bfloat16_and_records_it(impl, tiny, tmp_path):
    proc = train_run(impl, tiny[1], tmp_path / "run", "--precision", "mixed_bfloat16", epochs=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["hyper"]["precision"] == "mixed_bfloat16" and run["state"] == "complete"
    assert np.isfinite(run["epochs"][0]["loss"]) and run["epochs"][0]["val_accuracy"] > 0


@pytest.mark.skipif(bool(tf2.config.list_physical_devices("GPU")), reason="this machine has a GPU")
def test_mixed_float16_without_a_gpu_is_refused(tiny, tmp_path):
    proc = run_script("train.py", "--impl", "modern", "--data", tiny[1], "--precision", "mixed_float16",
                      "--run-dir", tmp_path / "run", env={**os.environ, **QUIET_TF})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "train.py: error: --precision mixed_float16 needs a GPU and there is none; on a CPU use mixed_bfloat16"]
    assert not (tmp_path / "run").exists()
