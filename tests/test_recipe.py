"""research/slim's recipe in each half's own training code (docs/DESIGN.md §10): legacy/train.py's
``training_graph`` in a Session against modern/train.py's ``compiled_model`` under ``fit``'s train function.

tests/test_optimizers.py holds each optimizer and schedule to TF1's on bare variables; here the whole step of a
BN network (jianshu_resnet_50 at 32x32, its BN decay 0.9, no dropout) goes through what train.py builds: the
label-smoothed loss with the regularization, the clipped gradients, the trainable scopes, the schedule moving
every two or three steps, and the moving averages of every model variable. One step from the network's initial
values, then ten from weights that have trained a little (the first steps from scratch are chaotic in float32,
docs/MIGRATION.md); the killed-and-resumed run with these flags is tests/test_faults.py's (the shared runs train
with slim's recipe, tests/helpers.py ``SLIM_RECIPE``).
"""

import numpy as np
import pytest

from core import checkpoints
from core.run_dir import Run
import legacy
from helpers import CLASSES, ONE_STEP, set_values, tolerance
from legacy.slim_compat import tf
from modern import naming
from test_checkpoints import BATCH, SIZE, batches, legacy_training

NAME = "jianshu_resnet_50"
FROZEN_OUTSIDE = [f"{NAME}/block4", f"{NAME}/logits"]
RECIPES = {
    # slim's default optimizer with its epsilon, the rate halved every 2 steps, smoothing, averages, clipping
    "rmsprop_exponential": dict(optimizer="rmsprop", opt_epsilon=1.0, learning_rate_decay_type="exponential",
                                learning_rate_decay_factor=0.5, label_smoothing=0.1, moving_average_decay=0.99,
                                clip_gradient_norm=1.0),
    # TF1 Momentum under a rate that changes every step (where Keras SGD's momentum would depart), only the last
    # block and the head trained
    "momentum_polynomial_scopes": dict(optimizer="momentum", learning_rate_decay_type="polynomial",
                                       end_learning_rate=0.001, trainable_scopes=FROZEN_OUTSIDE,
                                       moving_average_decay=0.9),
}
DECAY_STEPS = {"rmsprop_exponential": 2, "momentum_polynomial_scopes": 3}


def recipe_run(recipe, lr):
    return Run.in_memory("parity", NAME, len(CLASSES), SIZE, lr=lr, batch_norm_decay=0.9, **RECIPES[recipe])


def legacy_steps(run, segments, decay_steps):
    """legacy's training graph, built once, run over each ``(start, data)`` of ``segments`` from a fresh state at
    ``start`` (its shadows too): for each, ``(values after one step, values at the end, shadows at the end,
    losses)``, values by TF1 name."""
    from legacy.train import training_graph
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3])
        y = tf.placeholder(tf.int64, [BATCH])
        _, loss, _, train_op = training_graph(run, x, y, decay_steps=decay_steps)
        variables = [v for v in tf.global_variables() if checkpoints.model_variables([v.op.name], NAME)]
        names = [v.op.name for v in variables]
        shadows = {v.op.name[:-len(checkpoints.EMA)]: v for v in tf.global_variables()
                   if v.op.name.endswith(checkpoints.EMA)}
        assert sorted(shadows) == sorted(names)  # every model variable is averaged
        results = []
        with tf.Session(graph=graph) as sess:
            for start, data in segments:
                sess.run(tf.global_variables_initializer())  # the optimizer's slots and the global step anew
                set_values(sess, {**{v: start[v.op.name] for v in variables},
                                  **{s: start[n] for n, s in shadows.items()}})
                losses, after_one = [], None
                for images, labels in data:
                    losses.append(sess.run([train_op, loss], {x: images, y: labels})[1])
                    after_one = after_one or dict(zip(names, sess.run(variables)))
                results.append((after_one, dict(zip(names, sess.run(variables))),
                                {n: sess.run(s) for n, s in shadows.items()}, np.array(losses)))
    return results


def modern_steps(run, data, start, decay_steps):
    """The same from modern's compiled model (``train_on_batch`` runs ``fit``'s train function)."""
    from modern.train import compiled_model, recipe_optimizer
    model = compiled_model(run, decay_steps=decay_steps)
    weights = naming.weight_names(model)
    naming.assign(model, start)
    optimizer = recipe_optimizer(model)
    optimizer.swap_averages()  # the shadows were made from the model's own initial values: set them to start's
    naming.assign(model, start)
    losses, after_one = [], None
    for images, labels in data:
        losses.append(model.train_on_batch(images, labels, return_dict=True)["loss"])
        after_one = after_one or {n: w.numpy() for n, w in weights.items()}
    final = {n: w.numpy() for n, w in weights.items()}
    optimizer.swap_averages()
    averaged = {n: w.numpy() for n, w in weights.items()}
    optimizer.swap_averages()
    return after_one, final, averaged, np.array(losses)


@pytest.fixture(scope="module")
def warm():
    """jianshu_resnet_50's initial values in legacy's graph, and the values after 20 steps of the default recipe."""
    run = Run.in_memory("parity", NAME, len(CLASSES), SIZE, lr=0.01, learning_rate_decay_type="fixed",
                        batch_norm_decay=0.9)
    initial, _, trained, _ = legacy_training(run, batches(20, seed=4))
    return initial, trained


def assert_close(got, want, rtol, what):
    """Each array within ``rtol`` of its largest value, or of 0.01 for the nearly-zero ones (small BN betas and
    conv3 biases, whose gradients nearly cancel: they set the ten steps' floors, tests/helpers.py FLOORS)."""
    for n, reference in want.items():
        scale = max(np.max(np.abs(reference)), 1e-2)
        assert np.max(np.abs(got[n] - reference)) <= rtol * scale, (what, n)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_one_and_ten_steps_of_slims_recipe_are_the_same_in_both_halves(recipe, warm):
    initial, trained = warm
    decay_steps = DECAY_STEPS[recipe]
    run = recipe_run(recipe, lr=0.02)
    # one step from the initial values; ten from weights that have trained a little
    one, ten = (initial, batches(1, seed=3)), (trained, batches(10, seed=5))
    (legacy_one, _, _, legacy_loss), (_, legacy_end, legacy_avg, legacy_losses) = legacy_steps(run, [one, ten],
                                                                                               decay_steps)
    modern_one, _, _, modern_loss = modern_steps(run, one[1], initial, decay_steps)
    assert abs(modern_loss[0] - legacy_loss[0]) <= ONE_STEP * abs(legacy_loss[0])
    assert_close(modern_one, legacy_one, ONE_STEP, "one step")
    moved = [n for n in legacy_one if np.max(np.abs(legacy_one[n] - initial[n])) > 1e-2 * np.max(np.abs(initial[n]))]
    assert len(moved) >= 0.3 * len(legacy_one), len(moved)

    _, modern_end, modern_avg, modern_losses = modern_steps(run, ten[1], trained, decay_steps)
    # ten steps are chaotic in float32: bounds from measured floors (tests/helpers.py FLOORS); tf_keras's RMSprop,
    # or Keras SGD for TF1's Momentum, ends 30x to 4000x beyond them
    np.testing.assert_allclose(modern_losses, legacy_losses, rtol=tolerance("recipe ten losses"))
    assert np.ptp(legacy_losses) > 1e-2 * legacy_losses[0]
    assert_close(modern_end, legacy_end, tolerance("recipe ten weights"), "ten steps")
    assert_close(modern_avg, legacy_avg, tolerance("recipe ten averages"), "moving averages")
    # the guard: the averages of the weights that trained are not the weights (nor their start)
    trained_kernels = [n for n in legacy_end if n.endswith("weights") and not np.array_equal(legacy_end[n], trained[n])]
    lagging = [n for n in trained_kernels if np.max(np.abs(legacy_avg[n] - legacy_end[n])) > 1e-2 * np.max(
        np.abs(legacy_end[n] - trained[n]))]
    assert trained_kernels and len(lagging) == len(trained_kernels), (len(lagging), len(trained_kernels))

    if "trainable_scopes" in RECIPES[recipe]:  # outside the scopes: not one bit moved, but BN still learns
        for values in (legacy_end, modern_end):
            for n, value in values.items():
                if n.endswith(("moving_mean", "moving_variance")):
                    continue
                inside = any(n.startswith(s) for s in FROZEN_OUTSIDE)
                assert inside == (not np.array_equal(value, trained[n])), n
        bn = f"{NAME}/block1/unit_1/bottleneck/conv1/BatchNorm/moving_mean"
        assert not np.array_equal(legacy_end[bn], trained[bn]) and not np.array_equal(modern_end[bn], trained[bn])


@pytest.mark.slow
def test_precise_bn_sets_the_same_statistics_in_both_halves(warm):
    """legacy's second tower at BN decay 0 (``precise_bn_graph``) and modern's ``PreciseBatchNorm`` (momentum 0)
    on the same weights and batches: every moving statistic becomes the same mean of batch statistics."""
    import tensorflow as tf2

    from legacy.train import precise_bn_graph
    from modern.train import PreciseBatchNorm, compiled_model
    _, trained = warm
    run, data = recipe_run("rmsprop_exponential", lr=0.01), batches(3, seed=6)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3])
        legacy.build(NAME, x, len(CLASSES), is_training=False)  # the variables, as the training tower makes them
        variables = [v for v in tf.global_variables() if checkpoints.model_variables([v.op.name], NAME)]
        updates, statistics, _ = precise_bn_graph(run, x, variables)
        with tf.Session(graph=graph) as sess:
            set_values(sess, {v: trained[v.op.name] for v in variables})
            sums = None
            for images, _ in data:
                sess.run(updates, {x: images})
                values = sess.run(statistics)
                sums = values if sums is None else [a + b for a, b in zip(sums, values)]
    legacy_stats = {v.op.name: s / len(data) for v, s in zip(statistics, sums)}

    model = compiled_model(run, decay_steps=2)
    naming.assign(model, trained)
    callback = PreciseBatchNorm(tf2.data.Dataset.from_tensor_slices(
        ([d[0] for d in data], [d[1] for d in data])))
    callback.set_model(model)
    callback.on_test_begin()
    weights = naming.weight_names(model)
    assert len(legacy_stats) == sum(n.endswith(("moving_mean", "moving_variance")) for n in weights) > 50
    for name, want in legacy_stats.items():
        got = weights[name].numpy()
        assert np.max(np.abs(got - want)) <= 1e-4 * max(np.max(np.abs(want)), 1e-2), name
    # the guard: not the moving statistics they started from
    assert sum(not np.allclose(legacy_stats[n], trained[n], rtol=1e-2) for n in legacy_stats) > 0.5 * len(legacy_stats)
