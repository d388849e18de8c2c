"""TF1 idioms around the model against their TF2 counterparts (docs/MIGRATION.md): a frozen inference graph, the
staged path (tf_slim code in a Keras layer), and a GradientTape step.

Every comparison is between two independently built things: a TF1 graph run by a Session against a Keras model
(native or staged), a frozen GraphDef against a SavedModel and a TFLite file, a hand-written step against ``fit``.
The weights come from a real Saver checkpoint of a legacy graph with random values (tests/helpers.py's
``legacy_run``) or are copied from one model to the other, never shared. Guards: the logits spread, and one
perturbed weight fails the same tolerance.
"""

import numpy as np
import pytest
import tensorflow as tf2
import tf_keras

import legacy
import modern
from helpers import legacy_run, max_relative_error
from legacy import freeze as legacy_freeze
from legacy import staged
from legacy.slim_compat import tf
from modern import freeze as modern_freeze
from modern import naming, tape

CLASSES = 3
IMAGES = np.random.default_rng(1).uniform(0, 1, (8, 32, 32, 3)).astype(np.float32)
LABELS = np.array([0, 1, 2, 0, 1, 2, 1, 0], dtype=np.int64)


def perturbed_logits(model, images):
    """The logits of ``model`` with one kernel value changed by 0.5 (the model's weights are restored after)."""
    kernel = next(w for w in model.weights if w.name.endswith(("kernel:0", "weights:0")) and w.shape.rank == 4)
    original = kernel.numpy()
    changed = original.copy()
    changed.flat[7] += 0.5
    kernel.assign(changed)
    try:
        return np.asarray(model(images, training=False))
    finally:
        kernel.assign(original)


# --- a frozen inference graph <-> SavedModel <-> TFLite -----------------------------------------------------

def wrap_frozen_graph(path, inputs, outputs):
    """TensorFlow's migration guide's way to run a frozen ``.pb`` in TF2: import it inside
    ``tf.compat.v1.wrap_function`` and prune the function to the named tensors."""
    graph_def = tf.GraphDef.FromString(path.read_bytes())
    wrapped = tf.wrap_function(lambda: tf.import_graph_def(graph_def, name=""), [])
    element = wrapped.graph.as_graph_element
    return wrapped.prune(tf2.nest.map_structure(element, inputs), tf2.nest.map_structure(element, outputs))


def frozen_outputs(name, prefix, shapes, tmp_path):
    """Freeze ``name`` from ``prefix``, check that the ``.pb`` holds slim's names and constants only, and run it
    (a Session, and the TF2 way): ``{"logits": array, "predictions": array}``."""
    names = legacy_freeze.freeze(name, CLASSES, prefix, tmp_path / "frozen.pb", image_size=32)
    assert names["input"] == "input:0" and names["predictions"] == f"{name}/Predictions/Reshape_1:0"
    graph_def = tf.GraphDef.FromString((tmp_path / "frozen.pb").read_bytes())
    nodes = {node.name: node for node in graph_def.node}
    placeholder = nodes["input"]
    assert placeholder.op == "Placeholder" and placeholder.attr["dtype"].type == tf.float32.as_datatype_enum
    assert [d.size for d in placeholder.attr["shape"].shape.dim] == [-1, 32, 32, 3]
    # every variable became a constant of its own name; nothing of a variable, a saver or a gradient is left
    assert all(nodes[v].op == "Const" for v in shapes), [(v, nodes[v].op) for v in shapes if nodes[v].op != "Const"]
    assert not [n for n, node in nodes.items() if node.op in ("VarHandleOp", "VariableV2", "ReadVariableOp",
                                                             "AssignVariableOp", "SaveV2", "RestoreV2")]

    outputs = {k: v for k, v in names.items() if k != "input"}
    frozen_graph = legacy_freeze.FrozenGraph(tmp_path / "frozen.pb", outputs)
    frozen = frozen_graph(IMAGES)
    frozen_graph.close()
    # the same .pb the TF2 way (wrap_function): one GraphDef, so the same numbers within one forward pass's bound
    # (1e-5 of the largest value); bit-equal where oneDNN runs both (an AVX-512 CPU), apart without it (an AVX2
    # CPU, where the Session's and the tf.function's grappler passes fuse resnet18's convolutions differently:
    # 2.7e-7 of the largest logit, 2.0e-6 of the largest probability)
    wrapped = wrap_frozen_graph(tmp_path / "frozen.pb", names["input"], outputs)(tf2.constant(IMAGES))
    for key in outputs:
        assert np.max(np.abs(wrapped[key].numpy() - frozen[key])) <= 1e-5 * np.max(np.abs(frozen[key])), key
    return frozen


def test_a_frozen_graph_a_saved_model_and_tflite_give_the_same_logits(tmp_path):
    # lenet5 (get_variable and tf.nn layers): the export is the same code for any model, and this one is fast
    prefix, session_logits, _, shapes = legacy_run("lenet5", IMAGES, CLASSES, tmp_path)
    assert session_logits.std() > 0.1
    frozen = frozen_outputs("lenet5", prefix, shapes, tmp_path)
    assert max_relative_error(frozen["logits"], session_logits) <= 1e-5  # freezing changed nothing

    model = modern_freeze.from_checkpoint("lenet5", CLASSES, prefix, image_size=32)
    saved_path, tflite_path = modern_freeze.export(model, 32, str(tmp_path))
    saved = modern_freeze.SavedModel(saved_path)(IMAGES)
    lite = modern_freeze.Lite(tflite_path)(IMAGES)
    for other in (saved, lite):
        assert max_relative_error(other["logits"], frozen["logits"]) <= 1e-5
        assert np.max(np.abs(other["predictions"] - frozen["predictions"])) <= 1e-5
    # the guard: one perturbed weight in the modern model fails the same comparison
    assert max_relative_error(perturbed_logits(model, IMAGES), frozen["logits"]) > 1e-5


@pytest.mark.slow
def test_a_frozen_graph_folds_batch_norm_and_equals_the_native_model(staged_checkpoint, tmp_path):
    # resnet18 (slim.conv2d, slim.batch_norm): BN's moving statistics become constants too. Against the native
    # modern model in memory: SavedModel and TFLite export it as they export lenet5 (an 11M-weight conversion
    # would cost 10 s more)
    prefix, session_logits, _, shapes = staged_checkpoint
    assert any(n.endswith("moving_mean") for n in shapes)
    frozen = frozen_outputs(STAGED, prefix, shapes, tmp_path)
    assert max_relative_error(frozen["logits"], session_logits) <= 1e-5
    native = native_from(prefix)
    assert max_relative_error(np.asarray(native(IMAGES, training=False)), frozen["logits"]) <= 1e-5


# --- the staged path: tf_slim in a Keras layer ---------------------------------------------------------------
# resnet18 (article 004): slim.conv2d with biases and slim.batch_norm, trained by fit with BN in training mode

STAGED = "resnet18"
# a rate that moves every kernel and moving statistic by more than 100x the tolerance in one step from the random
# weights; a weight decay that makes the regularization a large part of the loss
STAGED_LR, STAGED_WEIGHT_DECAY, STAGED_BN_DECAY = 0.1, 1e-2, 0.9


@pytest.fixture(scope="module")
def staged_checkpoint(tmp_path_factory):
    """``(prefix, inference logits, training-mode logits, {name: shape})`` of a legacy resnet18 graph with random
    weights."""
    return legacy_run(STAGED, IMAGES, CLASSES, tmp_path_factory.mktemp("staged"))


def staged_from(prefix):
    model = staged.staged_model(STAGED, CLASSES, image_size=32, weight_decay=STAGED_WEIGHT_DECAY,
                                batch_norm_decay=STAGED_BN_DECAY)
    assert len(staged.load(model, prefix)) == len(model.variables)
    return model


def native_from(prefix):
    model = modern.build(STAGED, CLASSES, input_shape=(32, 32, 3))
    naming.load(model, prefix)
    return model


@pytest.mark.slow
def test_the_staged_model_has_the_legacy_variables_and_gives_the_logits_of_both_halves(staged_checkpoint):
    prefix, session_logits, session_training_logits, shapes = staged_checkpoint
    model = staged_from(prefix)
    # the variables carry the legacy graph's names and shapes, BN's moving statistics included
    assert {n: v.shape.as_list() for n, v in staged.tf1_variables(model).items()} == shapes
    assert any(n.endswith("moving_variance") and not v.trainable for n, v in staged.tf1_variables(model).items())
    native = native_from(prefix)
    staged_logits = np.asarray(model(IMAGES, training=False))
    native_logits = np.asarray(native(IMAGES, training=False))
    assert session_logits.std() > 0.1
    assert max_relative_error(staged_logits, session_logits) <= 1e-5
    assert max_relative_error(native_logits, session_logits) <= 1e-5
    assert max_relative_error(perturbed_logits(native, IMAGES), session_logits) > 1e-5  # the guard
    # training mode: batch statistics (docs/DESIGN.md §7: 1e-4)
    assert max_relative_error(np.asarray(model(IMAGES, training=True)), session_training_logits) <= 1e-4


def legacy_step(prefix):
    """One step of the legacy graph on IMAGES / LABELS: plain gradient descent on the cross-entropy plus the
    REGULARIZATION_LOSSES, BN in training mode with its UPDATE_OPS. Returns ``(loss, {name: value after})``."""
    graph = tf.Graph()
    with graph.as_default():
        logits, _ = legacy.build(STAGED, tf.constant(IMAGES), CLASSES, is_training=True,
                                 weight_decay=STAGED_WEIGHT_DECAY, batch_norm_decay=STAGED_BN_DECAY)
        loss = tf.losses.sparse_softmax_cross_entropy(tf.constant(LABELS), logits) + tf.losses.get_regularization_loss()
        with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
            step = tf.train.GradientDescentOptimizer(STAGED_LR).minimize(loss)
        variables = tf.global_variables()
        with tf.Session(graph=graph) as sess:
            tf.train.Saver(variables).restore(sess, prefix)
            value, _ = sess.run([loss, step])
            return value, {v.op.name: value for v, value in zip(variables, sess.run(variables))}


@pytest.fixture(scope="module")
def staged_one_step(staged_checkpoint):
    """The staged model after one ``fit`` step from the checkpoint, and the loss ``fit`` reported."""
    model = staged_from(staged_checkpoint[0])
    model.compile(optimizer=staged.keras.optimizers.SGD(STAGED_LR),
                  loss=staged.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(IMAGES, LABELS, batch_size=len(IMAGES), epochs=1, shuffle=False, verbose=0)
    return model, history.history["loss"][0]


@pytest.mark.slow
def test_one_fit_step_of_the_staged_model_is_one_step_of_the_legacy_graph(staged_checkpoint, staged_one_step):
    prefix, _, _, shapes = staged_checkpoint
    model, fit_loss = staged_one_step
    initial = {n: tf.train.load_checkpoint(prefix).get_tensor(n) for n in shapes}
    session_loss, session_after = legacy_step(prefix)
    assert abs(fit_loss - session_loss) <= 1e-4 * abs(session_loss)
    fit_after = {n: v.numpy() for n, v in staged.tf1_variables(model).items()}
    assert sorted(fit_after) == sorted(session_after)
    moved = {}
    for n, reference in session_after.items():
        scale = np.max(np.abs(reference))
        assert np.max(np.abs(fit_after[n] - reference)) <= 1e-4 * scale, n
        moved[n] = np.max(np.abs(reference - initial[n])) > 100 * 1e-4 * scale
    # the guard: every kernel and every BN moving statistic moved by more than 100x the tolerance
    assert all(moved[n] for n in moved if n.endswith(("weights", "moving_mean", "moving_variance"))), \
        [n for n, m in moved.items() if not m]


@pytest.mark.slow
def test_the_staged_checkpoint_loads_into_the_native_model_by_name(staged_one_step, tmp_path):
    model, _ = staged_one_step
    prefix = staged.save(model, tmp_path / "staged.ckpt")
    # a TF1 name-based checkpoint: the legacy names, nothing else (no object graph, no Keras paths)
    assert sorted(tf.train.load_checkpoint(prefix).get_variable_to_shape_map()) == sorted(staged.tf1_variables(model))
    native = native_from(prefix)
    staged_logits = np.asarray(model(IMAGES, training=False))
    assert staged_logits.std() > 0.1
    assert max_relative_error(np.asarray(native(IMAGES, training=False)), staged_logits) <= 1e-5
    assert max_relative_error(perturbed_logits(native, IMAGES), staged_logits) > 1e-5  # the guard


# --- a GradientTape step <-> fit -------------------------------------------------------------------------------
# article 004's VGG-13 (no BN, no dropout: nothing random in its step) with weight decay, so that the step must
# add model.losses; resnet18 for BN's training mode and moving statistics

# a rate that moves every weight by more than 100x the tolerance; a weight decay whose gradient (lr * wd * w, 1e-3
# of the weights) is 100x the tolerance: a step that left model.losses out would fail
TAPE_LR, TAPE_WEIGHT_DECAY = 0.1, 1e-2


def twins(name):
    """Two separately built models ``name`` with the same weights (the first's random initial values)."""
    first, second = (modern.build(name, CLASSES, input_shape=(32, 32, 3), weight_decay=TAPE_WEIGHT_DECAY,
                                  batch_norm_decay=0.9 if name == "resnet18" else None) for _ in range(2))
    second.set_weights(first.get_weights())
    return first, second


def optimizer():
    return tf_keras.optimizers.SGD(TAPE_LR, momentum=0.9)


@pytest.mark.parametrize("name", ["vgg13", pytest.param("resnet18", marks=pytest.mark.slow)])
def test_one_gradient_tape_step_is_one_fit_step(name):
    by_tape, by_fit = twins(name)
    initial = [w.numpy() for w in by_fit.weights]
    loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    tape_loss = float(tape.train_step(by_tape, optimizer(), loss_fn, tf2.constant(IMAGES), tf2.constant(LABELS)))
    by_fit.compile(optimizer=optimizer(), loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fit_loss = by_fit.fit(IMAGES, LABELS, batch_size=len(IMAGES), epochs=1, shuffle=False, verbose=0).history["loss"][0]
    assert abs(tape_loss - fit_loss) <= 1e-5 * abs(fit_loss)
    # the regularization is a visible part of the loss, so a step without model.losses would fail below
    regularization = float(tf2.add_n(by_fit.losses))
    assert regularization > 1e-2 * fit_loss
    names = [w.name for w in by_fit.weights]
    assert names == [w.name for w in by_tape.weights]
    moved = {}
    for n, before, got, reference in zip(names, initial, (w.numpy() for w in by_tape.weights),
                                         (w.numpy() for w in by_fit.weights)):
        scale = np.max(np.abs(reference))
        assert np.max(np.abs(got - reference)) <= 1e-5 * scale, n
        moved[n] = np.max(np.abs(reference - before)) > 100 * 1e-5 * scale
    # the guard: every kernel and every BN moving statistic moved by more than 100x the tolerance (a BN gamma's
    # gradient sums terms of both signs over the batch: CI saw one of resnet18's 17 barely move, by chance)
    guarded = [n for n in moved if n.endswith(("kernel:0", "moving_mean:0", "moving_variance:0"))]
    assert len(guarded) >= 10 and all(moved[n] for n in guarded), [n for n, m in moved.items() if not m]
    assert name != "resnet18" or sum(n.endswith("moving_variance:0") for n in names) == 17
