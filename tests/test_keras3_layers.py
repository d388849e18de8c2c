"""keras3/layers.py against TF1: slim's fused batch norm in a Session, on each Keras 3 backend in its own process.

The Keras 3 side runs in a subprocess per backend (the backend is fixed when Keras is first imported, and this
process has it on TensorFlow); the reference is tf_slim's ``batch_norm`` in a TF1 graph, built here.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core.errors import UserError
from core.keras_backend import BACKENDS, choose, loaded
from helpers import QUIET_TF, REPO
from legacy.slim_compat import slim, tf

# (name, input shape, decay, epsilon): a batch of 16 on a 1x1 map and as a dense input at decay 0, where the
# moving variance is the batch's variance itself (unbiased in TF1, 15/16 of it in Keras 3's own layer); a 3x3
# map at slim's 0.997 and an epsilon under TF1's fused floor
CASES = [("map1x1", (16, 1, 1, 4), 0.0, 1e-3), ("dense", (16, 4), 0.0, 1e-3), ("map3x3", (4, 3, 3, 6), 0.997, 1e-5)]

KERAS3 = """
import json, sys
import numpy as np
import keras
from keras3.layers import BatchNorm, DepthFilling
cases, out = json.loads(sys.argv[1]), {"backend": keras.backend.backend()}
for name, shape, decay, epsilon in cases:
    rng = np.random.default_rng(len(shape))
    x = rng.normal(3.0, 2.0, shape).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, shape[-1]), rng.normal(0, 1, shape[-1])
    for kind, layer in (("ours", BatchNorm(momentum=decay, epsilon=epsilon)),
                        ("stock", keras.layers.BatchNormalization(momentum=decay, epsilon=epsilon))):
        layer.build(shape)
        layer.gamma.assign(gamma.astype(np.float32)); layer.beta.assign(beta.astype(np.float32))
        train = keras.ops.convert_to_numpy(layer(x, training=True))
        infer = keras.ops.convert_to_numpy(layer(x, training=False))
        out[f"{name}/{kind}"] = {"train": train.tolist(), "infer": infer.tolist(), "epsilon": layer.epsilon,
                                 "mean": keras.ops.convert_to_numpy(layer.moving_mean).tolist(),
                                 "variance": keras.ops.convert_to_numpy(layer.moving_variance).tolist()}
x = np.arange(2 * 3 * 3 * 4, dtype=np.float32).reshape(2, 3, 3, 4)
out["depth_filling"] = keras.ops.convert_to_numpy(DepthFilling(8)(x)).tolist()
print(json.dumps(out))
"""


def slim_batch_norm(shape, decay, epsilon):
    """tf_slim's batch_norm (fused, scale, as resnet_arg_scope sets it) on CASES' values: one training step with
    its update ops, then inference."""
    rng = np.random.default_rng(len(shape))
    x = rng.normal(3.0, 2.0, shape).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, shape[-1]), rng.normal(0, 1, shape[-1])
    graph = tf.Graph()
    with graph.as_default():
        # a dense input as N images of 1x1: tf_slim 1.1's batch_norm of a 2-D tensor fails on TF 2.21
        # (tensorflow.python.framework.ops.Tensor is gone); the fused kernel takes 4-D only anyway
        images = tf.constant(x.reshape(-1, 1, 1, shape[-1]) if len(shape) != 4 else x)
        train = slim.batch_norm(images, decay=decay, epsilon=epsilon, scale=True, is_training=True, fused=True,
                                param_initializers={"gamma": tf.constant_initializer(gamma),
                                                    "beta": tf.constant_initializer(beta)}, scope="bn")
        infer = slim.batch_norm(images, decay=decay, epsilon=epsilon, scale=True, is_training=False, fused=True,
                                scope="bn", reuse=True)
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        variables = {v.op.name: v for v in tf.global_variables()}
        moving = [variables[f"bn/moving_{s}"] for s in ("mean", "variance")]
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            trained, _ = sess.run([train, updates])
            inferred, (mean, variance) = sess.run([infer, moving])
    return {"x": x, "train": trained.reshape(shape), "infer": inferred.reshape(shape), "mean": mean,
            "variance": variance}


@pytest.fixture(scope="module", params=BACKENDS)
def keras3(request):
    """What keras3's layers (and Keras 3's own BatchNormalization) compute on one backend, in a process of its
    own."""
    env = {**os.environ, **QUIET_TF, "KERAS_BACKEND": request.param}
    proc = subprocess.run([sys.executable, "-c", KERAS3, json.dumps(CASES)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("backend") == request.param
    return {k: {n: np.asarray(v) for n, v in r.items()} if isinstance(r, dict) else np.asarray(r)
            for k, r in out.items()}


def relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("name, shape, decay, epsilon", CASES)
def test_batch_norm_trains_and_infers_as_slims_fused_batch_norm(keras3, name, shape, decay, epsilon):
    slim_out, ours = slim_batch_norm(shape, decay, epsilon), keras3[f"{name}/ours"]
    assert float(ours["epsilon"]) == max(epsilon, 1.001e-5)  # tf.nn.fused_batch_norm's floor
    for key in ("train", "infer", "mean", "variance"):
        assert relative(ours[key], slim_out[key]) < 1e-5, key
    if decay == 0.0:  # the moving variance is the batch's: unbiased, as TF1's fused kernel keeps it
        unbiased = np.var(slim_out["x"].reshape(-1, shape[-1]), axis=0, ddof=1)
        assert relative(ours["variance"], unbiased) < 1e-5


@pytest.mark.parametrize("name, shape, decay, epsilon", CASES[:2])
def test_keras3s_own_batch_normalization_keeps_the_biased_variance(keras3, name, shape, decay, epsilon):
    """The difference BatchNorm exists for (docs/DESIGN.md's Keras 3 facts): 15/16 of slim's at 16 values."""
    stock, reference = keras3[f"{name}/stock"], slim_batch_norm(shape, decay, epsilon)
    assert np.allclose(stock["variance"] / reference["variance"], 15 / 16, rtol=1e-5)
    assert relative(stock["train"], reference["train"]) < 1e-5  # both normalise with the biased variance


def test_depth_filling_pads_the_channels_with_zeros_on_each_side(keras3):
    x = np.arange(2 * 3 * 3 * 4, dtype=np.float32).reshape(2, 3, 3, 4)
    np.testing.assert_array_equal(keras3["depth_filling"], np.pad(x, [(0, 0)] * 3 + [(2, 2)]))


def test_the_backend_is_refused_where_keras_is_loaded_on_another(monkeypatch):
    import keras  # noqa: F401  (this process: Keras 3 on its default backend, TensorFlow)
    assert loaded() == "tensorflow"
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    with pytest.raises(UserError, match="already loaded on tensorflow in this process"):
        choose("jax")
    choose("tensorflow")
    assert os.environ["KERAS_BACKEND"] == "tensorflow"
