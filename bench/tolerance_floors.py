"""The noise floors behind the suite's parity tolerances (docs/DESIGN.md §7, "Tolerances").

    python bench/tolerance_floors.py [--json bench/results/floors.json]
                                     [--only recipe,checkpoints,net,optimizers,harness,backends]

A parity test holds one half against the other (legacy's Session against modern's compiled step). How far apart two
correct programs may end depends on how much float32's rounding grows over the steps compared, so each half is also
compared **with itself** under changed arithmetic that leaves the maths equal:

* ``onednn``: the same process with ``TF_ENABLE_ONEDNN_OPTS=0`` (Eigen's kernels instead of oneDNN's: what another CPU
  family does to the convolutions, their gradients and BN, since oneDNN picks its kernels per CPU);
* ``threads``: ``TF_NUM_INTRAOP_THREADS=1`` (every reduction split, and so summed, in another order);
* ``ulp``: the starting values (or, for bare variables, the fed gradients) moved by one unit in the last place,
  with a seeded random sign, in the default process: any one rounding done otherwise at the first step.

The floor of a comparison is the largest of these six self-differences (three per half); the test's bound is a
stated margin over the larger of that floor and the figure seen on another CPU (issue 22: an Intel Xeon with AMX
put the rmsprop recipe's averages 1.3e-3 apart). The comparisons are the tests' own, by their own functions and
measures (tests/ is imported):

* ``recipe``: tests/test_recipe.py, jianshu_resnet_50 at 32x32 through each half's training code, one step from the
  initial values and ten from warm weights: losses, weights and moving averages (``assert_close``'s measure);
* ``checkpoints``: tests/test_checkpoints.py's one and ten steps of jianshu_resnet_50 and resnet_v1_50;
* ``net``: tests/test_optimizers.py's small BN net, every optimizer x schedule case, one step and ten losses;
* ``optimizers``: tests/test_optimizers.py's bare variables fed the same gradients, every case, steps 1 and 10;
* ``harness``: tests/test_harness.py's tiny net trained six steps by each half's harness: losses, saved weights;
* ``backends``: tests/test_keras3_train.py's three ``fit`` steps of keras3 (the tiny runs' net and recipe) on JAX
  against TensorFlow: there the "halves" are the two Keras backends, each against itself with oneDNN off
  (TensorFlow), on one thread (``TF_NUM_INTRAOP_THREADS=1``; JAX: ``--xla_cpu_multi_thread_eigen=false``) and one
  ulp off.

Then the mistakes each bound exists for, put in the modern half one at a time and measured against legacy the same
way (``MISTAKES``): tf_keras's own RMSprop (mean square from 0), Keras's SGD for TF1's Momentum, Keras's ``L2(wd)``
for slim's ``l2_regularizer(wd)``. A bound set from the floors must stay below each of them.

Each (half, environment) runs in its own process (the environment is read once, at TensorFlow's start); the warm
weights are made once, by legacy in the default environment, and read by every process. With ``--work DIR`` each
process's numbers are kept there and reused by a later run. 23 minutes here for recipe, checkpoints, net, harness.
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PARTS = ("recipe", "checkpoints", "net", "optimizers", "harness", "backends")
ENVIRONMENTS = {"default": {}, "onednn": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "threads": {"TF_NUM_INTRAOP_THREADS": "1"}}
HALVES = ("legacy", "modern")
CHECKPOINT_NETS = ("jianshu_resnet_50", "resnet_v1_50")
# issue 22's figure on an Intel Xeon (AMX): the recipe's averages after ten rmsprop steps, 3.9e-5 of 0.030
OTHER_CPU = {"recipe/rmsprop_exponential/ten/averages": 1.3e-3}


# --- measures: the tests' own -------------------------------------------------------------------------------

def loss_measure(got, want):
    """max |got - want| / |want| over the steps (``assert_allclose``'s rtol)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want) / np.abs(want)))


def array_measure(got, want, floor=0.0):
    """max over the arrays of max |got - want| over max(max |want|, ``floor``)."""
    worst = 0.0
    for name, reference in want.items():
        scale = max(float(np.max(np.abs(reference))), floor)
        worst = max(worst, float(np.max(np.abs(np.asarray(got[name], np.float64) - reference))) / scale)
    return worst


def recipe_measure(got, want):
    """tests/test_recipe.py's ``assert_close``: of the largest value, or of 0.01 for the nearly-zero arrays."""
    return array_measure(got, want, floor=1e-2)


# --- one process: every comparison's numbers from one half in one environment --------------------------------

def ulp(values, seed):
    """``values`` (``{name: array}``) each moved by one unit in the last place, up or down at random."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in values.items():
        value = np.asarray(value, np.float32)
        direction = np.where(rng.random(value.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
        out[name] = np.nextafter(value, direction).astype(np.float32)
    return out


def run_recipe(half, start, perturb):
    import test_recipe as t
    out = {}
    for recipe in sorted(t.RECIPES):
        run = t.recipe_run(recipe, lr=0.02)
        decay = t.DECAY_STEPS[recipe]
        initial, trained = (perturb(start["initial"]), perturb(start["trained"]))
        one, ten = (initial, t.batches(1, seed=3)), (trained, t.batches(10, seed=5))
        if half == "legacy":
            (after_one, _, _, one_loss), (_, end, averages, losses) = t.legacy_steps(run, [one, ten], decay)
        else:
            after_one, _, _, one_loss = t.modern_steps(run, one[1], initial, decay)
            _, end, averages, losses = t.modern_steps(run, ten[1], trained, decay)
        out[recipe] = {"one/loss": one_loss, "one/weights": after_one, "ten/losses": losses, "ten/weights": end,
                       "ten/averages": averages}
    return out


def run_checkpoints(half, start, perturb):
    import test_checkpoints as t
    out = {}
    for name in CHECKPOINT_NETS:
        initial, warm = perturb(start[f"{name}/initial"]), perturb(start[f"{name}/trained"])
        one_run, ten_run = t.parity_run(name, lr=0.05), t.parity_run(name, lr=0.01)
        if half == "legacy":
            _, after_one, _, one_loss = t.legacy_training(one_run, t.batches(1, seed=3), start=initial)
            _, _, end, losses = t.legacy_training(ten_run, t.batches(10, seed=5), start=warm)
        else:
            after_one, one_loss = t.modern_training(one_run, t.batches(1, seed=3), initial)
            _, losses = t.modern_training(ten_run, t.batches(10, seed=5), warm)
        out[name] = {"one/loss": one_loss, "one/weights": after_one, "ten/losses": losses}
    return out


def run_net(half, perturb):
    import test_optimizers as t
    out = {}
    for name, kind in t.NET_CASES:
        hyper, initial, batches = t.net_hyper(name, kind), perturb(t.net_initial_values()), t.net_batches()
        if half == "legacy":
            losses, first = t.legacy_net_steps(hyper, initial, batches)
        else:
            losses, first, _ = t.modern_net_steps(hyper, initial, batches)
        out[f"{name}-{kind}"] = {"one/weights": first["vars"], "ten/losses": losses}
    return out


def run_optimizers(half, perturb):
    import test_optimizers as t
    out = {}
    for name, kind, parameters, scale in t.CASES:
        hyper = t.Hyper(optimizer=name, lr=0.1, learning_rate_decay_type=kind, learning_rate_decay_factor=0.5,
                        end_learning_rate=0.01, **parameters)
        gradients = [perturb(g) for g in t.gradient_sets(scale=scale)]
        if half == "legacy":
            records = [r["vars"] for r in t.legacy_steps(hyper, 3, gradients)]
        else:
            variables = t.modern_variables()
            records = t.modern_steps(t.modern_optimizer(hyper, 3, variables), variables, gradients)
        out[f"{name}-{kind}{'-nondefault' if parameters else ''}"] = {"one/weights": records[0],
                                                                      "ten/weights": records[-1]}
    return out


def run_harness(half, perturb):
    import tempfile as temporary

    import test_harness as t
    images, labels, initial = t.legacy_harness.tiny_problem()
    with temporary.TemporaryDirectory() as model_dir:
        records = t.HALVES[half].train(images, labels, perturb(initial), model_dir, train_steps=t.STEPS,
                                       batch_size=t.BATCH, learning_rate=t.LR, decay=t.DECAY,
                                       save_steps=t.SAVE_STEPS)
        last = t.checkpoint_values(half, model_dir, t.STEPS)
    return {"tiny": {"six/losses": [loss for _, loss in records],
                     "six/weights": {n: v for n, v in last.items() if n != "global_step"}}}


def worker(half, parts, start_file, out_file, with_ulp, mistake=None):
    """Run ``parts`` for ``half`` (and again from one-ulp-moved values when ``with_ulp``; with ``mistake``'s patch
    when given); pickle the numbers."""
    if mistake:
        MISTAKES[mistake][0]()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "tests"))
    start = pickle.loads(Path(start_file).read_bytes()) if start_file else {}
    variants = {"default": lambda v: v}
    if with_ulp:
        variants["ulp"] = lambda v: ulp(v, seed=11)
    results = {}
    for variant, perturb in variants.items():
        got = {}
        for part in parts:
            print(f"  {half} {variant}: {part}", file=sys.stderr, flush=True)
            if part == "recipe":
                got[part] = run_recipe(half, start["recipe"], perturb)
            elif part == "checkpoints":
                got[part] = run_checkpoints(half, start["checkpoints"], perturb)
            else:
                got[part] = {"net": run_net, "optimizers": run_optimizers, "harness": run_harness}[part](half, perturb)
        results[variant] = got
    Path(out_file).write_bytes(pickle.dumps(results))


def warm_starts(out_file):
    """The tests' starting points, made once by legacy: test_recipe's ``warm`` fixture, test_checkpoints' warm
    weights (20 steps of the default recipe) and the nets' initial values."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "tests"))
    import test_checkpoints as c
    from core.run_dir import Run
    from helpers import CLASSES
    start = {"checkpoints": {}}
    for name in CHECKPOINT_NETS:
        run = c.parity_run(name, lr=0.01)
        initial, _, trained, _ = c.legacy_training(run, c.batches(20, seed=4))
        start["checkpoints"].update({f"{name}/initial": initial, f"{name}/trained": trained})
    run = Run.in_memory("parity", "jianshu_resnet_50", len(CLASSES), c.SIZE, lr=0.01,
                        learning_rate_decay_type="fixed", batch_norm_decay=0.9)
    initial, _, trained, _ = c.legacy_training(run, c.batches(20, seed=4))
    start["recipe"] = {"initial": initial, "trained": trained}
    Path(out_file).write_bytes(pickle.dumps(start))


# --- keras3: the same steps on JAX and on TensorFlow -----------------------------------------------------------

BACKEND_ENVIRONMENTS = {
    "tensorflow": {"onednn": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "threads": {"TF_NUM_INTRAOP_THREADS": "1"}},
    "jax": {"threads": {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}},
}


def backend_floors(work):
    """``{comparison: {"halves": JAX vs TensorFlow, "<backend>/<variant>": self-difference, "floor"}}`` of
    tests/test_keras3_train.py's three steps, each process's numbers kept in ``work``."""
    import test_keras3_train as t
    start, got = work / "keras3-start.pkl", {}
    for backend, environments in BACKEND_ENVIRONMENTS.items():
        for variant, env in {"default": {}, "ulp": {}, **environments}.items():
            out = work / f"keras3-{backend}-{variant}.pkl"
            print(f"  keras3 {backend} {variant}", file=sys.stderr, flush=True)
            got[backend, variant] = (pickle.loads(out.read_bytes()) if out.exists() else
                                     t.three_steps(backend, start, out, seed=11 if variant == "ulp" else 0, env=env))
    table = {}
    for key, difference in (("losses", t.loss_difference), ("weights", t.array_difference),
                            ("averages", t.array_difference)):
        row = {"halves": difference(got["jax", "default"][key], got["tensorflow", "default"][key])}
        for (backend, variant), numbers in got.items():
            if variant != "default":
                row[f"{backend}/{variant}"] = difference(numbers[key], got[backend, "default"][key])
        row["floor"] = max(v for k, v in row.items() if k != "halves")
        table[f"keras3 three steps {key}"] = row
    return table


# --- the mistakes a bound exists for: modern with one of them, against legacy ---------------------------------

def keras_rmsprop():
    """tf_keras's own RMSprop (its mean square starts at 0, TF1's at 1)."""
    import tf_keras as keras
    from modern import optimizers
    plain = type("KerasRMSprop", (optimizers.Recipe, keras.optimizers.RMSprop), {})
    optimizers.CLASSES["rmsprop"] = plain


def keras_sgd():
    """tf_keras's own SGD for TF1's Momentum (its slot holds -lr * a: off after every change of the rate)."""
    import tf_keras as keras
    from modern import optimizers
    plain = type("KerasSGD", (optimizers.Recipe, keras.optimizers.SGD), {})
    optimizers.CLASSES["momentum"] = plain


def keras_l2():
    """Keras's ``L2(wd)`` for slim's ``l2_regularizer(wd)`` (twice slim's penalty: it adds ``wd * sum(w**2) / 2``)."""
    import tf_keras as keras
    base = keras.regularizers.L2
    keras.regularizers.L2 = type("DoubledL2", (base,), {"__init__": lambda self, l2=0.01: base.__init__(self, 2 * l2)})


# name -> (the patch, the parts it is measured on)
MISTAKES = {"keras_rmsprop": (keras_rmsprop, ("recipe", "net")), "keras_sgd": (keras_sgd, ("recipe", "net")),
            "keras_l2": (keras_l2, ("recipe", "checkpoints"))}


# --- the comparisons -------------------------------------------------------------------------------------------

def measure(part, key, got, want):
    if key.endswith("loss") or key.endswith("losses"):
        return loss_measure(got, want)
    return recipe_measure(got, want) if part == "recipe" else array_measure(got, want)


def compare(results):
    """``{comparison: {"halves": legacy vs modern, "<half>/<variant>": self-difference, "floor": the largest}}``."""
    reference = {half: results[half]["default"]["default"] for half in HALVES}
    table = {}
    for part, cases in reference["legacy"].items():
        for case, quantities in cases.items():
            for key, want in quantities.items():
                row = {"halves": measure(part, key, reference["modern"][part][case][key], want)}
                for half in HALVES:
                    for env, variants in results[half].items():
                        for variant, got in variants.items():
                            if (env, variant) != ("default", "default"):
                                label = f"{half}/{variant if variant != 'default' else env}"
                                row[label] = measure(part, key, got[part][case][key], reference[half][part][case][key])
                row["floor"] = max(v for k, v in row.items() if k != "halves")
                table[f"{part}/{case}/{key}"] = row
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    parser.add_argument("--worker", nargs=4, metavar=("HALF", "PARTS", "START", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--ulp", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mistake", choices=sorted(MISTAKES), help=argparse.SUPPRESS)
    parser.add_argument("--work", help="keep each process's numbers in this folder and reuse them when run again")
    parser.add_argument("--warm", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warm:
        return warm_starts(args.warm)
    if args.worker:
        half, parts, start, out = args.worker
        return worker(half, parts.split(","), start if start != "-" else None, out, args.ulp, args.mistake)
    parts = args.only.split(",")
    if "backends" in parts:
        parts.remove("backends")
        sys.path.insert(0, str(REPO / "tests"))
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(args.work or tmp)
            work.mkdir(parents=True, exist_ok=True)
            table = backend_floors(work)
        columns = ["halves", "floor", *sorted({c for row in table.values() for c in row} - {"halves", "floor"})]
        print(f"{'comparison (halves: JAX vs TensorFlow)':40} " + " ".join(f"{c:>18}" for c in columns))
        for name, row in table.items():
            print(f"{name:40} " + " ".join(f"{row[c]:18.2e}" for c in columns))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).with_suffix(".backends.json").write_text(json.dumps({"floors": table}, indent=1))
        if not parts:
            return
    quiet = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    me = [sys.executable, __file__]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)

        def once(out, command, extra_env=None):
            """Run ``command`` unless ``out`` is there from a run before (with --work); return its numbers."""
            if not out.exists():
                subprocess.run([*command, str(out)], env={**quiet, **(extra_env or {})}, check=True)
            return pickle.loads(out.read_bytes())

        start = "-"
        if {"recipe", "checkpoints"} & set(parts):
            print("warm weights (legacy, default)", file=sys.stderr, flush=True)
            once(work / "start.pkl", [*me, "--warm"])
            start = str(work / "start.pkl")
        results = {half: {} for half in HALVES}
        for env, extra in ENVIRONMENTS.items():
            for half in HALVES:
                ulp_flag = ["--ulp"] if env == "default" else []
                results[half][env] = once(work / f"{half}-{env}-{'+'.join(parts)}.pkl",
                                          [*me, *ulp_flag, "--worker", half, ",".join(parts), start], extra)
        mistakes = {}
        for mistake, (_, on) in MISTAKES.items():
            if set(on) & set(parts):
                on_parts = ",".join(p for p in parts if p in on)
                mistakes[mistake] = once(work / f"{mistake}-{on_parts.replace(',', '+')}.pkl",
                                         [*me, "--mistake", mistake, "--worker", "modern", on_parts, start])["default"]
    table = compare(results)
    for mistake, got in mistakes.items():
        for part, cases in got.items():
            for case, quantities in cases.items():
                for key, value in quantities.items():
                    want = results["legacy"]["default"]["default"][part][case][key]
                    table[f"{part}/{case}/{key}"][mistake] = measure(part, key, value, want)
    columns = ["halves", "floor"] + [f"{h}/{v}" for h in HALVES for v in ("onednn", "threads", "ulp")]
    columns += [m for m in MISTAKES if any(m in row for row in table.values())]
    print(f"{'comparison':58} " + " ".join(f"{c:>14}" for c in columns))
    for name, row in table.items():
        print(f"{name:58} " + " ".join(f"{row[c]:14.2e}" if c in row else f"{'':14}" for c in columns))
    for name, figure in OTHER_CPU.items():
        if name in table:
            print(f"another CPU (issue 22): {name} {figure:.1e}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"floors": table, "other_cpu": OTHER_CPU}, indent=1))


if __name__ == "__main__":
    main()
