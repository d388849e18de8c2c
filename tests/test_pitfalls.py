"""The porting pitfalls of docs/MIGRATION.md that no end-to-end test isolates, each shown on a small case.

Each test builds the TF1/slim construct and its Keras counterpart independently and shows where they agree
and which innocent-looking alternative does not.
"""

import contextlib
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tf_keras as keras

import legacy
import modern
from helpers import REPO, run_script
from kerasnets.kit import using
from kerasnets.resnet import conv2d_same
from legacy.slim_compat import resnet_utils, slim, tf, tf1_hashing
from modern.kit import KIT


def run_graph(build, feed):
    """Run ``build(placeholder)`` in a fresh graph and session on ``feed``; returns (output, {name: value})."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, feed.shape)
        out = build(x)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            result = sess.run([out, tf.get_collection(tf.GraphKeys.UPDATE_OPS)], {x: feed})[0]
            return result, {v.op.name: sess.run(v) for v in tf.global_variables()}


def test_slims_conv2d_same_is_not_keras_padding_same_at_stride_2():
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype(np.float32)
    def slim_conv(t):
        with slim.arg_scope([slim.conv2d], activation_fn=None, biases_initializer=None):
            return resnet_utils.conv2d_same(t, 4, 3, stride=2, scope="conv")
    slim_out, variables = run_graph(slim_conv, x)
    kernel = variables["conv/weights"]
    inputs = keras.Input((8, 8, 3))
    with using(KIT):
        ours = keras.Model(inputs, conv2d_same(inputs, 4, 3, 2, "conv", 0.0, use_bias=False))
    ours.get_layer("conv").set_weights([kernel])
    np.testing.assert_allclose(ours(x).numpy(), slim_out, atol=1e-5)
    keras_same = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)
    keras_same.build(x.shape)
    keras_same.set_weights([kernel])
    assert keras_same(x).shape == slim_out.shape  # same shape, other pixels: the odd pad goes after, not before
    assert np.max(np.abs(keras_same(x).numpy() - slim_out)) > 0.1


def test_only_keras_fused_batch_norm_updates_the_moving_variance_as_slim_does():
    x = np.random.default_rng(0).normal(2, 3, (4, 5, 5, 8)).astype(np.float32)
    _, variables = run_graph(lambda t: slim.batch_norm(t, decay=0.9, epsilon=1e-5, scale=True, fused=True,
                                                       is_training=True), x)
    slim_variance = variables["BatchNorm/moving_variance"]
    n = 4 * 5 * 5
    np.testing.assert_allclose(slim_variance, 0.9 + 0.1 * x.reshape(-1, 8).var(0) * n / (n - 1), rtol=1e-5)
    gaps = {}
    for fused in (True, False):
        bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, fused=fused)
        bn(x, training=True)
        gaps[fused] = np.max(np.abs(bn.moving_variance.numpy() - slim_variance))
    assert gaps[True] < 1e-5 and gaps[False] > 1e-3  # unfused Keras uses the biased batch variance


def test_slims_l2_regularizer_is_half_of_keras_l2_with_the_same_number():
    w = np.random.default_rng(0).normal(size=(3, 3, 4, 8)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        slim_penalty = sess.run(slim.l2_regularizer(1e-4)(tf.constant(w)))
    np.testing.assert_allclose(slim_penalty, 1e-4 * np.sum(w ** 2) / 2, rtol=1e-5)
    np.testing.assert_allclose(float(keras.regularizers.L2(1e-4 / 2)(w)), slim_penalty, rtol=1e-5)
    assert abs(float(keras.regularizers.L2(1e-4)(w)) - slim_penalty) > 0.5 * slim_penalty


def test_weights_h5_keys_layers_by_class_and_order_but_h5_by_name(tmp_path):
    model = modern.build("jianshu_resnet_50", 3, input_shape=(32, 32, 3))
    model.save_weights(tmp_path / "best.h5")
    model.save_weights(tmp_path / "x.weights.h5")
    with h5py.File(tmp_path / "best.h5", "r") as f:
        by_name = {n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]}
    with h5py.File(tmp_path / "x.weights.h5", "r") as f:
        by_order = set(f["layers"])
    assert "block1__unit_1__bottleneck__conv1__BatchNorm" in by_name
    assert "conv2d_17" in by_order and not any(n.startswith("block1__") for n in by_order)


def control_edges(graph):
    return sum(len(op.control_inputs) for op in graph.get_operations())


@pytest.mark.slow
def test_update_ops_around_minimize_give_every_new_op_an_edge_but_a_gated_loss_does_not():
    from legacy.train import training_graph
    from core.run_dir import Run
    run = Run.in_memory("legacy", "densenet_100x12", 3, 32, lr=0.1, learning_rate_decay_type="fixed",
                        batch_norm_decay=0.9)
    graphs = {}
    for idiom in ("common", "ours"):
        graphs[idiom] = tf.Graph()
        with graphs[idiom].as_default():
            images, labels = tf.zeros([2, 32, 32, 3]), tf.zeros([2], tf.int64)
            if idiom == "ours":
                training_graph(run, images, labels, decay_steps=1)
            else:
                logits, _ = legacy.build(run.model, images, 3, is_training=True, batch_norm_decay=0.9)
                loss = tf.losses.sparse_softmax_cross_entropy(labels, logits) + tf.losses.get_regularization_loss()
                with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
                    tf.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
    updates = len(graphs["ours"].get_collection(tf.GraphKeys.UPDATE_OPS))
    assert updates > 100  # two moving averages per BN layer
    # ours: the update ops gate the loss once (the rest of its edges are tf.gradients' own grouping)
    assert len(graphs["ours"].get_operation_by_name("loss_after_updates").control_inputs) == updates
    # measured: 222,988 control edges against 2,219 for densenet_100x12
    assert control_edges(graphs["common"]) > 50 * control_edges(graphs["ours"])


def test_graph_building_under_tf2_tensor_equality_is_quadratic_in_the_variables_and_tf1_hashing_is_not(
        monkeypatch):
    """Each ``Variable.__hash__`` asks ``executing_eagerly_outside_functions`` under TF2's default, and tf_keras's
    legacy layers (under ``slim.batch_norm``) hash every global variable each time they add one."""
    from tensorflow.python.framework import ops
    calls = [0]
    real = ops.executing_eagerly_outside_functions
    def counted():
        calls[0] += 1
        return real()
    monkeypatch.setattr(ops, "executing_eagerly_outside_functions", counted)
    def asks(layers, hashing):
        calls[0] = 0
        with tf.Graph().as_default(), hashing():
            x = tf.zeros([2, 4, 4, 3])
            for i in range(layers):
                x = slim.batch_norm(x, scope=f"bn{i}")
        return calls[0]
    tf2 = {n: asks(n, contextlib.nullcontext) for n in (20, 40)}
    tf1 = {n: asks(n, tf1_hashing) for n in (20, 40)}
    assert tf2[40] / tf2[20] > 3.5  # twice the layers, four times the work
    assert tf1[40] / tf1[20] < 2.2 and tf1[40] * 10 < tf2[40]
    # and eager code after the block keeps TF2's element-wise ==
    assert tf.reduce_all(tf.constant([1, 2]) == tf.constant([1, 2])).numpy()
    with pytest.raises(TypeError):
        hash(tf.constant(1))


def test_a_multi_step_train_function_traces_the_training_step_twice_as_often():
    """autograph traces a loop's body once more to learn what it returns, so ``steps_per_execution > 1``
    doubles the tracing of ``train_step``: what modern.train.steps_per_execution weighs against an epoch's steps."""
    traces = {}
    for spe in (1, 4):
        calls = []

        class Counting(keras.Model):
            def train_step(self, data):
                calls.append(spe)
                return super().train_step(data)

        x = keras.Input((4,), name="x")
        model = Counting(x, keras.layers.Dense(2, name="dense")(x))
        model.compile(keras.optimizers.SGD(0.1), "mse", steps_per_execution=spe)
        model.fit(np.zeros((32, 4), np.float32), np.zeros((32, 2), np.float32), batch_size=4, epochs=2, verbose=0)
        traces[spe] = len(calls)
    assert traces[4] == 2 * traces[1] and traces[1] >= 1


def test_steps_per_execution_divides_save_every_and_leaves_an_epoch_four_calls():
    from modern.train import steps_per_execution
    assert [steps_per_execution(200, n) for n in (1000, 32, 31, 16, 8, 7, 3)] == [8, 8, 4, 4, 2, 1, 1]
    assert [steps_per_execution(s, 1000) for s in (200, 100, 4, 6, 7)] == [8, 4, 4, 2, 1]


@pytest.mark.slow
def test_tf_upgrade_v2_only_renames_legacy_into_tf_compat_v1(tmp_path):
    out = tmp_path / "upgraded"
    proc = subprocess.run([str(Path(sys.executable).parent / "tf_upgrade_v2"), "--intree", str(REPO / "legacy"), "--outtree", str(out / "legacy"),
                           "--reportfile", str(tmp_path / "report.txt")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = (tmp_path / "report.txt").read_text()
    files = len(list((REPO / "legacy").glob("*.py")))
    assert f"Converted {files} files" in report
    # its "issues": Saver.save taken for Keras's model.save, and get_variable's ResourceVariable notice
    summary = report.split("Detailed log follows")[0]
    issues = [line for line in summary.splitlines() if ": WARNING: " in line or ": ERROR: " in line]
    assert issues and all("*.save requires manual check" in line or "tf.get_variable requires manual check" in line
                          for line in issues), issues
    assert f"Detected {len(issues)} issues that require attention" in report
    resnet = (out / "legacy" / "resnet.py").read_text()
    assert "tf.keras.regularizers.l2(0.5 * (weight_decay))" in resnet and "slim.arg_scope" in resnet
    assert "import tensorflow as tf" in (out / "legacy" / "slim_compat.py").read_text()
    assert "tf.compat.v1.Session" in (out / "legacy" / "train.py").read_text()
    # the upgraded package still builds the same graph: the same variables and the same penalty
    (out / "flowio").symlink_to(REPO / "flowio")
    code = """if True:
        import json, sys
        import tensorflow.compat.v1 as tf
        import legacy
        g = tf.Graph()
        with g.as_default():
            legacy.build("jianshu_resnet_50", tf.placeholder(tf.float32, [2, 32, 32, 3]), 10, weight_decay=1e-4)
            print(json.dumps({v.op.name: v.shape.as_list() for v in tf.global_variables()}))
    """
    shapes = {}
    for where in (out, REPO):
        proc = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        shapes[where] = proc.stdout.strip().splitlines()[-1]
    assert shapes[out] == shapes[REPO]


def test_the_migration_guides_anchors_and_tests_exist():
    proc = run_script("doc_anchors.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    guide = (REPO / "docs" / "MIGRATION.md").read_text()
    cited = re.findall(r"(tests/\w+\.py)::(\w+)", guide)
    assert len(cited) >= 15
    for path, name in cited:
        assert f"def {name}(" in (REPO / path).read_text(), (path, name)
