"""``--precision``: what each half computes in under mixed_bfloat16, and train.py end to end with it.

Legacy gets bfloat16 from grappler's rewrite switched on in the Session config, modern and keras3 from the Keras
dtype policy the model is built under (keras3 on each backend, in a process of its own); all keep float32 weights,
so the same weights can run either way.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf2

import modern
from core import kernels
from helpers import KERAS3_BACKENDS, QUIET_TF, REPO, run_script, train_run

NAME, SIZE, CLASSES = "jianshu_resnet_50", 32, 10

# TensorFlow's bfloat16 on oneDNN where ONEDNN_MAX_CPU_ISA caps oneDNN below the CPU's bfloat16 (AVX2 emulated on a
# CPU with AVX-512 BF16 / AMX, DESIGN §8): TensorFlow reads the CPU as it is and rewrites to bfloat16, and oneDNN
# under the cap cannot make the primitives ("could not create a primitive descriptor for the convolution"); a CPU
# without bfloat16 has no such mismatch, and JAX's bfloat16 is XLA's
_BF16 = {"avx512_bf16", "amx_bf16"}
_FLAGS = kernels.cpu_flags() or frozenset()
onednn_bfloat16 = pytest.mark.skipif(
    bool(_BF16 & _FLAGS) and not _BF16 & kernels.capped(_FLAGS, os.environ.get("ONEDNN_MAX_CPU_ISA")),
    reason="ONEDNN_MAX_CPU_ISA caps oneDNN below this CPU's bfloat16, which TensorFlow still rewrites to")


def relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32)


LEGACY_IN_BFLOAT16 = f"""
import json, numpy as np
import legacy
from legacy.slim_compat import tf
from legacy.train import session_config
images = np.random.default_rng(0).uniform(0, 1, (4, {SIZE}, {SIZE}, 3)).astype(np.float32)
graph = tf.Graph()
with graph.as_default():
    tf.set_random_seed(0)  # the same initial weights in every Session
    x = tf.placeholder(tf.float32, images.shape)
    logits, _ = legacy.build("{NAME}", x, {CLASSES}, is_training=False)
    init = tf.global_variables_initializer()
out = []
for precision in ("float32", "float32", "mixed_bfloat16"):
    with tf.Session(graph=graph, config=session_config(precision)) as sess:
        sess.run(init)
        out.append(sess.run(logits, {{x: images}}))
relative = lambda a, b: float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
print(json.dumps({{"dtype": str(out[2].dtype), "std": float(out[0].std()),
                  "again": relative(out[1], out[0]), "bfloat16": relative(out[2], out[0])}}))
"""


@pytest.mark.parametrize("onednn", [pytest.param("1", marks=onednn_bfloat16), pytest.param("0", marks=pytest.mark.slow)])
def test_legacy_computes_in_bfloat16_when_the_session_config_says_so_and_refuses_without_onednn(onednn):
    # A process of its own: TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, and leaves oneDNN off by default on
    # some CPUs, where grappler's bfloat16 rewrite then does nothing (legacy.train.session_config).
    proc = subprocess.run([sys.executable, "-c", LEGACY_IN_BFLOAT16], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **QUIET_TF, "TF_ENABLE_ONEDNN_OPTS": onednn}, timeout=600)
    if onednn == "0":
        assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
            "core.errors.UserError: --precision mixed_bfloat16 in a TF1 Session is oneDNN's graph rewrite, and"
            " oneDNN is off in this process: unset TF_ENABLE_ONEDNN_OPTS=0, or set TF_ENABLE_ONEDNN_OPTS=1")
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["dtype"] == "float32" and out["std"] > 0.1
    assert out["again"] < 1e-6  # the same float32 graph twice
    assert 1e-4 < out["bfloat16"] < 5e-2  # bfloat16 has an 8-bit mantissa


@onednn_bfloat16
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


KERAS3_IN_BFLOAT16 = f"""
import json, numpy as np
import keras
import keras3
images = np.random.default_rng(0).uniform(0, 1, (4, {SIZE}, {SIZE}, 3)).astype(np.float32)
full = keras3.build("{NAME}", {CLASSES}, input_shape=({SIZE}, {SIZE}, 3))
mixed = keras3.build("{NAME}", {CLASSES}, input_shape=({SIZE}, {SIZE}, 3), precision="mixed_bfloat16")
mixed.set_weights(full.get_weights())
reference = keras.ops.convert_to_numpy(full(images, training=False))
result = mixed(images, training=False)
relative = lambda a, b: float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
print(json.dumps({{"backend": keras.backend.backend(), "policy": keras.config.dtype_policy().name,
                  "conv": sorted({{l.compute_dtype for l in mixed.layers if "conv" in l.name}}),
                  "logits": mixed.get_layer("logits").compute_dtype,
                  "weights": sorted({{str(w.dtype) for w in mixed.weights}}),
                  "dtype": keras.backend.standardize_dtype(result.dtype),
                  "std": float(reference.std()), "bfloat16": relative(keras.ops.convert_to_numpy(result), reference)}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", [pytest.param(b, marks=onednn_bfloat16) if b == "tensorflow" else b
                                     for b in KERAS3_BACKENDS])
def test_keras3_computes_in_bfloat16_under_the_policy_with_a_float32_head(backend):
    proc = subprocess.run([sys.executable, "-c", KERAS3_IN_BFLOAT16], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **QUIET_TF, "KERAS_BACKEND": backend}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend and out["policy"] == "float32"  # build leaves the global policy alone
    assert out["conv"] == ["bfloat16"] and out["logits"] == "float32" and out["weights"] == ["float32"]
    assert out["dtype"] == "float32" and out["std"] > 0.1
    assert 1e-4 < out["bfloat16"] < 5e-2


@pytest.mark.slow
@pytest.mark.parametrize("impl, extra", [
    pytest.param("legacy", (), marks=onednn_bfloat16, id="legacy"),
    pytest.param("modern", (), marks=onednn_bfloat16, id="modern"),
    *[pytest.param("keras3", ("--keras-backend", b), marks=[onednn_bfloat16] if b == "tensorflow" else [],
                   id=f"keras3-{b}") for b in KERAS3_BACKENDS]])
def test_train_py_trains_in_mixed_bfloat16_and_records_it(impl, extra, tiny, tmp_path):
    proc = train_run(impl, tiny[1], tmp_path / "run", "--precision", "mixed_bfloat16", *extra, epochs=1)
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
