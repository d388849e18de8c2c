"""keras3/optimizers.py against TF1 (docs/DESIGN.md §10): every optimizer × schedule case of tests/test_optimizers.py,
the moving averages with TF1's warm-up, the restriction to some variables and the clipping, each fed the same
initial values and gradients as TF1's optimizer in a Session (built here, by legacy/optimizers.py), on each Keras 3
backend in a process of its own. Each backend runs the steps eagerly, and once as training does: in a
``tf.function`` on TensorFlow, through ``stateless_apply`` under ``jax.jit`` on JAX.

Bounds are tests/test_optimizers.py's for the tf_keras half (TOL 1e-5, 29x the floor its docstring gives; the
shadows 1e-6), and the measured differences are the tf_keras half's: as max |difference| over max |TF1's value|
per array, over every case but the stock guards, the variables within 1.8e-7 (TensorFlow) and 3.7e-7 (JAX) of
TF1's after one step and 2.7e-7 after ten, the slots within 3.6e-7, the shadows within 6e-8 and 1.2e-7 (TF 2.21,
Keras 3.15.1, JAX 0.10.2, AVX2 CPU). Every weight moves more than 100x TOL, and Keras 3's own SGD and RMSprop
land more than 1000x TOL away.

The BN net (tests/test_optimizers.py's, each case's one step and ten losses): on TensorFlow the first loss is
bit-equal to TF1's, the weights within 1.6e-7, the slots within 1.1e-7, the ten losses within 1.8e-6; on JAX the
first loss within 7.2e-8, the weights within 3.6e-4, the slots within 5.8e-4 (Adam's v, a square, doubles the
gradient's error), the ten losses within 1.7e-4. JAX's one step is held to 3x TF1's own error there (tests/
helpers.py FLOORS "bn net one step on jax": TF1's fused BN gradient is 3.5e-4 off a float64 computation, JAX's
within 5.6e-6 of it), TensorFlow's to the tf_keras half's ONE_STEP.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core.keras_backend import BACKENDS
from core.run_dir import Hyper
from helpers import QUIET_TF, REPO, tolerance
from test_optimizers import (CASES, NET_CASES, NET_CLASSES, NET_DECAY_STEPS, NET_KERNELS, NET_LOSS_TOL, NET_STEPS,
                             NET_TOL, NET_VARIABLES, SHAPES, SLOTS, STEPS, TOL, gradient_sets, initial_values,
                             legacy_net_steps, legacy_steps, net_batches, net_hyper, net_initial_values, relative)

# a Keras 3 process per backend (about a minute each on 2 cores): outside `make test-fast`
pytestmark = pytest.mark.slow

KERAS3 = r"""
import json, sys
import numpy as np
import keras
from keras import ops
from core.run_dir import Hyper
from keras3 import optimizers

backend = keras.backend.backend()
cases, out = json.load(open(sys.argv[1])), {}


def value(v):
    return np.asarray(ops.convert_to_numpy(v), np.float64).tolist()


def slots(optimizer, attributes, variables, trained):
    # attributes: TF1's slot name -> the Keras 3 class's list of it (tests/test_optimizers.py's SLOTS: tf_keras and
    # Keras 3 name them alike)
    got = {}
    for slot, attribute in attributes.items():
        kept = getattr(optimizer, attribute, [])
        got.update({f"{slot}|{n}": value(kept[optimizer._get_variable_index(variables[n])])
                    for n in trained if kept})
    return got


def record(optimizer, attributes, variables, trained, shadows):
    return {"vars": {n: value(v) for n, v in variables.items()},
            "slots": slots(optimizer, attributes, variables, trained),
            "shadows": {n: value(s) for n, s in shadows.items()}, "iterations": int(optimizer.iterations)}


def eager(case):
    hyper = Hyper(**case["hyper"])
    if case["kind"] == "stock":  # Keras 3's own class, as a porter would first write it
        arguments = dict(case["stock_args"])
        if isinstance(arguments["learning_rate"], dict):
            arguments["learning_rate"] = keras.optimizers.schedules.deserialize(arguments["learning_rate"])
        optimizer = getattr(keras.optimizers, case["stock"])(**arguments)
    else:
        optimizer = optimizers.optimizer(hyper, case["decay_steps"])
    variables = {n: keras.Variable(np.asarray(v, np.float32), name=n) for n, v in case["initial"].items()}
    trained = case["trained"] or list(case["gradients"][0])
    statistics = case["statistics"]
    if statistics:
        variables["moving_mean"] = keras.Variable(np.asarray(statistics[0], np.float32), trainable=False,
                                                  name="moving_mean")
    optimizer.build([variables[n] for n in trained])
    # from a copy: on TensorFlow ``keras.Variable(v.value)`` wraps v's own tf.Variable (the shadow would be v)
    shadows = ({n: keras.Variable(ops.convert_to_numpy(v), trainable=False, name=f"{n}_average") for n, v in variables.items()}
               if case["average"] else {})
    records = []
    for i, grads in enumerate(case["gradients"]):
        if statistics:
            variables["moving_mean"].assign(np.asarray(statistics[i + 1], np.float32))
        optimizer.apply([np.asarray(grads[n], np.float32) for n in trained], [variables[n] for n in trained])
        if shadows:
            decay = optimizers.average_decay(case["average"], optimizer.iterations)
            for n, shadow in shadows.items():
                shadow.assign(optimizers.moving_average(shadow.value, variables[n].value, decay))
        if i in (0, len(case["gradients"]) - 1):
            records.append(record(optimizer, case["slots"], variables, trained, shadows))
    counts = {attribute: len(getattr(optimizer, attribute, [])) for attribute in case["slots"].values()}
    return {"records": records, "counts": counts}


def compiled(case):
    # as training runs the step: traced once, the averages after the update (TF: by the order of the ops in the
    # function; JAX: values threaded through stateless_apply)
    hyper = Hyper(**case["hyper"])
    optimizer = optimizers.optimizer(hyper, case["decay_steps"])
    names = list(case["initial"])
    variables = {n: keras.Variable(np.asarray(v, np.float32), name=n, trainable=n in case["trained"])
                 for n, v in case["initial"].items()}
    statistics = case["statistics"]
    variables["moving_mean"] = keras.Variable(np.asarray(statistics[0], np.float32), trainable=False,
                                              name="moving_mean")
    trained = [n for n in variables if variables[n].trainable]
    optimizer.build([variables[n] for n in trained])
    shadows = {n: keras.Variable(ops.convert_to_numpy(v), trainable=False, name=f"{n}_average") for n, v in variables.items()}
    if backend == "jax":
        import jax
        at = next(i for i, v in enumerate(optimizer.variables) if v is optimizer._iterations)

        @jax.jit
        def step(optimizer_values, trained_values, shadow_values, values, statistic, grads):
            trained_values, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, trained_values)
            values = {**values, **dict(zip(trained, trained_values)), "moving_mean": statistic}
            decay = optimizers.average_decay(case["average"], optimizer_values[at])
            shadow_values = {n: optimizers.moving_average(s, values[n], decay) for n, s in shadow_values.items()}
            return optimizer_values, trained_values, shadow_values, values

        state = ([v.value for v in optimizer.variables], [variables[n].value for n in trained],
                 {n: s.value for n, s in shadows.items()}, {n: v.value for n, v in variables.items()})
        for i, grads in enumerate(case["gradients"]):
            state = step(*state, np.asarray(statistics[i + 1], np.float32),
                         [np.asarray(grads[n], np.float32) for n in trained])
        optimizer_values, _, shadow_values, values = state
        for v, x in zip(optimizer.variables, optimizer_values):
            v.assign(x)
        for n, x in values.items():
            variables[n].assign(x)
        for n, x in shadow_values.items():
            shadows[n].assign(x)
    else:
        import tensorflow as tf

        @tf.function
        def step(statistic, grads):
            variables["moving_mean"].assign(statistic)
            optimizer.apply(grads, [variables[n] for n in trained])
            decay = optimizers.average_decay(case["average"], optimizer.iterations)
            for n, shadow in shadows.items():
                shadow.assign(optimizers.moving_average(shadow.value, variables[n].value, decay))

        for i, grads in enumerate(case["gradients"]):
            step(tf.constant(np.asarray(statistics[i + 1], np.float32)),
                 [tf.constant(np.asarray(grads[n], np.float32)) for n in trained])
    return {"records": [record(optimizer, case["slots"], variables, trained, shadows)], "counts": {}}


def net(case):
    # tests/test_optimizers.py's small BN net in Keras 3, keras3's BatchNorm as slim's fused batch_norm
    from keras3.layers import BatchNorm
    hyper, arrays = Hyper(**case["hyper"]), np.load(case["arrays"])
    inputs = keras.Input(arrays["images"].shape[2:], name="images")
    x = inputs
    for i, channels in ((1, 8), (2, 16)):
        x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = BatchNorm(momentum=0.9, epsilon=1e-5, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        if i == 1:
            x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool2")(x)
    model = keras.Model(inputs, keras.layers.Dense(case["classes"], name="logits")(x), name="net")
    optimizer = optimizers.optimizer(hyper, case["decay_steps"])
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    optimizer.build(model.trainable_variables)
    variables = {n: getattr(model.get_layer(layer), attribute) for n, (layer, attribute) in case["mapping"].items()}
    assert len(model.weights) == len(variables)
    for n, v in variables.items():
        v.assign(arrays[f"initial/{n}"])
    losses, first = [], None
    for images, labels in zip(arrays["images"], arrays["labels"]):
        losses.append(float(model.train_on_batch(images, labels)))
        if first is None:
            first = record(optimizer, case["slots"], variables, [n for n, v in variables.items() if v.trainable], {})
    return {"records": [first], "losses": losses, "counts": {}}


KINDS = {"compiled": compiled, "net": net}
for key, case in cases.items():
    out[key] = KINDS.get(case["kind"], eager)(case)
json.dump({"backend": backend, "cases": out}, open(sys.argv[2], "w"))
"""


def lists(values):
    return {n: np.asarray(v).tolist() for n, v in values.items()}


def keras3_case(hyper, decay_steps, gradients, kind="recipe", trained=None, average=None, statistics=None,
                **stock):
    return {"hyper": {k: getattr(hyper, k) for k in hyper.__dataclass_fields__}, "slots": SLOTS[hyper.optimizer],
            "decay_steps": decay_steps, "kind": kind, "initial": lists(initial_values()),
            "gradients": [lists(g) for g in gradients], "trained": trained, "average": average,
            "statistics": [np.asarray(s).tolist() for s in statistics] if statistics is not None else None,
            **stock}


def hyper_of(name, kind, parameters):
    # tests/test_optimizers.py's: slim's defaults otherwise, lr 0.1 so that every optimizer moves its weights far
    return Hyper(optimizer=name, lr=0.1, learning_rate_decay_type=kind, learning_rate_decay_factor=0.5,
                 end_learning_rate=0.01, **parameters)


def case_id(name, kind, parameters):
    return f"{name}-{kind}{'-nondefault' if parameters else ''}"


STATISTICS = [np.float32(v) for v in np.random.default_rng(2).normal(0, 1, (STEPS + 1, 4))]


def all_cases():
    """``{id: (TF1's records, keras3's case)}``: every case of tests/test_optimizers.py, the two stock Keras 3
    classes the recipe replaces (the guards), the averages at two decays, the clipping, one compiled step
    restricted, clipped and averaged, and tests/test_optimizers.py's BN net under every optimizer x schedule."""
    cases = {}
    for name, kind, parameters, scale in CASES:
        hyper, gradients = hyper_of(name, kind, parameters), gradient_sets(scale=scale)
        cases[case_id(name, kind, parameters)] = (legacy_steps(hyper, 3, gradients),
                                                  keras3_case(hyper, 3, gradients))
    gradients = gradient_sets()
    # Keras 3's own SGD for TF1's Momentum after lr drops at steps 4, 7, 10; its RMSprop (velocity from 0)
    momentum = hyper_of("momentum", "exponential", {})
    cases["stock-sgd"] = (legacy_steps(momentum, 3, gradients), keras3_case(
        momentum, 3, gradients, kind="stock", stock="SGD",
        stock_args={"learning_rate": {"class_name": "ExponentialDecay", "config": {
            "initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.5, "staircase": True}},
            "momentum": 0.9}))
    rmsprop = hyper_of("rmsprop", "fixed", {})
    cases["stock-rmsprop"] = (legacy_steps(rmsprop, 3, gradients), keras3_case(
        rmsprop, 3, gradients, kind="stock", stock="RMSprop",
        stock_args={"learning_rate": 0.1, "rho": 0.9, "momentum": 0.9, "epsilon": 1.0}))
    for decay in (0.4, 0.999):  # 0.4: the warm-up's (1+t)/(10+t) and then 0.4 itself
        hyper = Hyper(optimizer="momentum", lr=0.1, learning_rate_decay_type="fixed", moving_average_decay=decay)
        cases[f"average-{decay}"] = (legacy_steps(hyper, 3, gradients, average=decay, statistics=STATISTICS),
                                     keras3_case(hyper, 3, gradients, average=decay, statistics=STATISTICS))
    # norms of N(0, 3) gradients: kernel ~25, dense ~12, bias ~6: 8 clips all three, each to its own norm
    clipped = Hyper(optimizer="momentum", lr=0.1, learning_rate_decay_type="fixed", clip_gradient_norm=8.0)
    big = gradient_sets(scale=3.0)
    cases["clip"] = (legacy_steps(clipped, 3, big, clip=True), keras3_case(clipped, 3, big))
    cases["unclipped"] = (legacy_steps(clipped, 3, big), None)
    adam = Hyper(optimizer="adam", lr=0.1, learning_rate_decay_type="exponential", learning_rate_decay_factor=0.5,
                 clip_gradient_norm=8.0)
    trained = ["kernel", "dense"]
    cases["compiled"] = (legacy_steps(adam, 3, big, trained=trained, clip=True, average=0.999,
                                      statistics=STATISTICS),
                         keras3_case(adam, 3, big, kind="compiled", trained=trained, average=0.999,
                                     statistics=STATISTICS))
    initial, batches = net_initial_values(), net_batches()
    for name, kind in NET_CASES:
        hyper = net_hyper(name, kind)
        cases[f"net-{name}-{kind}"] = (legacy_net_steps(hyper, initial, batches), {
            "kind": "net", "hyper": {k: getattr(hyper, k) for k in hyper.__dataclass_fields__},
            "slots": SLOTS[name],
            "decay_steps": NET_DECAY_STEPS, "classes": NET_CLASSES,
            "mapping": {n: [layer, attribute] for n, (layer, attribute, _) in NET_VARIABLES.items()}})
    return cases


def net_arrays(path):
    """The BN net's initial values and batches (the same for every case), in one file for keras3's process."""
    initial, batches = net_initial_values(), net_batches()
    np.savez(path, images=np.stack([b[0] for b in batches]), labels=np.stack([b[1] for b in batches]),
             **{f"initial/{n}": v for n, v in initial.items()})
    return str(path)


@pytest.fixture(scope="module")
def cases():
    return all_cases()


@pytest.fixture(scope="module", params=BACKENDS)
def keras3(request, cases, tmp_path_factory):
    """``{id: {"records": [after step 1, after step 10] (one for compiled), "counts": {slot attribute: n}}}``
    from keras3's optimizers on one backend, in a process of its own."""
    folder = tmp_path_factory.mktemp(f"optimizers-{request.param}")
    arrays = net_arrays(folder / "net.npz")
    (folder / "cases.json").write_text(json.dumps({k: {**c, "arrays": arrays} for k, (_, c) in cases.items()
                                                   if c is not None}))
    env = {**os.environ, **QUIET_TF, "KERAS_BACKEND": request.param}
    proc = subprocess.run([sys.executable, "-c", KERAS3, str(folder / "cases.json"), str(folder / "out.json")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((folder / "out.json").read_text())
    assert out["backend"] == request.param
    return {**out["cases"], "backend": request.param}


def key(k):
    """TF1's slot key ``(slot, variable)`` as keras3's records name it."""
    return f"{k[0]}|{k[1]}" if isinstance(k, tuple) else k


def largest(got, expected, which):
    """``(the largest relative difference, where)`` over the arrays of ``expected[which]`` that ``got`` has (Adam's
    ``beta1_power`` and ``beta2_power`` are Keras's ``iterations``)."""
    pairs = [(relative(np.asarray(got[which][key(k)]), v), key(k)) for k, v in expected[which].items()
             if key(k) in got[which]]
    assert pairs, which
    return max(pairs)


@pytest.mark.parametrize("name, kind, parameters, scale", CASES,
                         ids=[case_id(n, k, p) for n, k, p, _ in CASES])
def test_each_optimizer_computes_tf1s_update_step_by_step(keras3, cases, name, kind, parameters, scale):
    reference, _ = cases[case_id(name, kind, parameters)]
    got = keras3[case_id(name, kind, parameters)]
    for (step, record) in zip((1, STEPS), got["records"]):
        expected = reference[step - 1]
        assert record["iterations"] == step
        worst, where = largest(record, expected, "vars")
        assert worst < TOL, (step, where, worst)
        slots = {(s, n): v for (s, n), v in expected["slots"].items() if not s.startswith("beta")}
        if name == "rmsprop" and not parameters.get("rmsprop_momentum", 0.9):
            # Keras 3 keeps no momentum slot at momentum 0; TF1 one of lr*g/rms, the same move
            assert got["counts"]["_momentums"] == 0
            slots = {k: v for k, v in slots.items() if k[0] != "momentum"}
        assert set(record["slots"]) == {key(k) for k in slots}  # exactly TF1's slots
        for k, value in slots.items():
            assert relative(np.asarray(record["slots"][key(k)]), value) < TOL, (step, k)
    for n, value in initial_values().items():  # the comparison means something: the weights moved
        assert relative(np.asarray(got["records"][-1]["vars"][n]), value) > 100 * TOL, n


def test_keras3s_own_sgd_and_rmsprop_are_not_tf1s(keras3, cases):
    """The guards: Keras 3's SGD departs from TF1's Momentum after each learning-rate drop (steps 4, 7, 10 of lr
    0.1 halved every 3), its RMSprop (mean square from 0) from the first step."""
    for key in ("stock-sgd", "stock-rmsprop"):
        reference, _ = cases[key]
        worst, _ = largest(keras3[key]["records"][-1], reference[-1], "vars")
        assert worst > 1000 * TOL, (key, worst)


@pytest.mark.parametrize("decay", [0.4, 0.999])
def test_moving_averages_are_tf1s_exponential_moving_average_of_the_global_step(keras3, cases, decay):
    reference, _ = cases[f"average-{decay}"]
    record = keras3[f"average-{decay}"]["records"][-1]
    assert largest(record, reference[-1], "vars")[0] < TOL
    worst, where = largest(record, reference[-1], "shadows")
    assert worst < 1e-6, (where, worst)
    for n, shadow in record["shadows"].items():  # the averages are not the variables
        assert relative(np.asarray(shadow), np.asarray(record["vars"][n])) > 1e-3, n


def test_clip_gradient_norm_clips_each_gradient_by_its_own_norm(keras3, cases):
    reference, _ = cases["clip"]
    unclipped, _ = cases["unclipped"]
    record = keras3["clip"]["records"][-1]
    assert largest(record, reference[-1], "vars")[0] < TOL
    for n in SHAPES:  # clipping acted
        assert relative(unclipped[-1]["vars"][n], reference[-1]["vars"][n]) > 100 * TOL, n


def test_a_compiled_restricted_clipped_averaged_step_is_tf1s(keras3, cases):
    """As training runs it: a ``tf.function`` on TensorFlow, ``stateless_apply`` under ``jax.jit`` on JAX; the
    variable outside the trained ones (``trainable = False``) bit-equal to its initial value, as TF1's."""
    reference, _ = cases["compiled"]
    record = keras3["compiled"]["records"][-1]
    assert record["iterations"] == STEPS
    assert np.array_equal(np.asarray(record["vars"]["bias"], np.float32), initial_values()["bias"])
    assert largest(record, reference[-1], "vars")[0] < TOL
    assert largest(record, reference[-1], "slots")[0] < TOL
    worst, where = largest(record, reference[-1], "shadows")
    assert worst < 1e-6, (where, worst)


@pytest.mark.parametrize("name, kind", NET_CASES, ids=[f"{n}-{k}" for n, k in NET_CASES])
def test_each_optimizer_trains_a_bn_net_as_tf1_one_step_and_ten(keras3, cases, name, kind):
    """tests/test_optimizers.py's BN net, built in Keras 3 with keras3's BatchNorm, compiled with the recipe's
    optimizer and stepped by ``train_on_batch`` (the compiled train step of ``fit``) from the same weights on the
    same batches as TF1's graph: the first step's loss, every weight, BN statistic and slot, and ten losses through
    the schedule's drops."""
    (tf1_losses, tf1), _ = cases[f"net-{name}-{kind}"]
    got = keras3[f"net-{name}-{kind}"]
    first = got["records"][0]
    # on TensorFlow the BN gradient is TF1's own kernel; JAX's differs from it by TF1's own error (helpers FLOORS)
    bound = NET_TOL if "tensorflow" in keras3["backend"] else tolerance("bn net one step on jax")
    assert tf1["step"] == first["iterations"] == 1
    assert abs(got["losses"][0] - tf1_losses[0]) <= NET_TOL * abs(tf1_losses[0])
    worst, where = largest(first, tf1, "vars")  # FTRL's step all but sets a weight to its gradient's term
    assert worst < bound, (where, worst)
    assert set(first["slots"]) == {key(k) for k in tf1["slots"]}  # a slot per trained variable, TF1's names
    if tf1["slots"]:
        worst, where = largest(first, tf1, "slots")
        assert worst < bound, (where, worst)
    for n in NET_KERNELS:  # the comparison means something: each kernel moved far beyond the tolerance
        assert relative(tf1["vars"][n], net_initial_values()[n]) > 100 * NET_TOL, n
    assert len(got["losses"]) == NET_STEPS and len(set(tf1_losses)) == NET_STEPS
    for step, (loss, tf1_loss) in enumerate(zip(got["losses"], tf1_losses), 1):
        assert abs(loss - tf1_loss) <= NET_LOSS_TOL * abs(tf1_loss), (step, loss, tf1_loss)
