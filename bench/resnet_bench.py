"""ResNet benchmark: legacy vs modern jianshu_resnet_50, forward and forward+backward, side by side.

    python bench/resnet_bench.py [--size 224] [--batch 16] [--steps 8] [--repeat 2] [--precisions ...]

Images/s on random inputs generated on the device, so only the network is measured, in each precision of
``--precisions`` (train.py's ``--precision``):

* legacy: ``Session.run`` of the logits (inference) and of legacy/train.py's own ``training_graph`` step, in a
  Session with legacy/train.py's ``session_config`` (the same graph for every precision);
* modern: ``model.predict`` and ``model.fit`` of the model ``modern.build`` makes under the precision's policy:
  as modern/train.py compiles it (``modern_train``: its optimizer, metrics and ``steps_per_execution``, 8 at
  the default ``--save-every``), and plain (SGD with momentum, ``steps_per_execution`` 1 and 4);
* reference: ``tf_keras.applications.ResNet50(weights=None)`` through the same ``predict`` / ``fit``.

Each measurement is repeated ``--repeat`` times, interleaved, and the median is shown; the ratios the goals
are about are modern (as train.py compiles it) / legacy training images/s (>= 0.95) and each precision / float32 (>= 1.8 for
mixed_bfloat16). The README has the figures this machine gave.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

import legacy  # noqa: E402
from core.run_dir import Run  # noqa: E402
import modern  # noqa: E402
from flowio.reader import NO_AUTOTUNE_THREAD  # noqa: E402
from legacy.slim_compat import tf as tf1  # noqa: E402
from legacy.train import session_config, training_graph  # noqa: E402
from modern.train import compiled_model, steps_per_execution  # noqa: E402

DEFAULT_SAVE_EVERY = 200  # train.py's --save-every, which sets its steps_per_execution

NUM_CLASSES = 10


def run_spec(name, size, precision):
    """What train.py records for a run (what training_graph and compiled_model read), at a constant lr."""
    return Run.in_memory("bench", name, NUM_CLASSES, size, lr=0.01, learning_rate_decay_type="fixed",
                         precision=precision)


class Legacy:
    """One graph (training step and inference tower); a Session per precision, as train.py makes it."""

    graphs = {}

    def __init__(self, name, size, batch, precision):
        key = (name, size, batch)
        if key not in self.graphs:
            graph = tf1.Graph()
            with graph.as_default():
                images = tf1.random.uniform([batch, size, size, 3])
                labels = tf1.random.uniform([batch], 0, NUM_CLASSES, dtype=tf1.int64)
                _, _, _, train_op = training_graph(run_spec(name, size, "float32"), images, labels, 1)
                with tf1.variable_scope(tf1.get_variable_scope(), reuse=True):
                    logits, _ = legacy.build(name, images, NUM_CLASSES, is_training=False)
                self.graphs[key] = graph, train_op, logits, tf1.global_variables_initializer()
        self.graph, self.train_op, self.logits, init = self.graphs[key]
        self.sess = tf1.Session(graph=self.graph, config=session_config(precision))
        self.sess.run(init)

    def infer(self, steps):
        return _timed(lambda: self.sess.run(self.logits), steps)

    def train(self, steps):
        return _timed(lambda: self.sess.run(self.train_op), steps)


class Modern:
    def __init__(self, model, batch, size=None):
        self.model, self.batch = model, batch
        size = model.input_shape[1] if size is None else size
        images = tf.random.uniform([batch, size, size, 3])
        labels = tf.random.uniform([batch], 0, NUM_CLASSES, dtype=tf.int64)
        # without tf.data's autotuning thread, as flowio's reader: with it, fit and predict return only when that
        # thread wakes (flowio.reader.NO_AUTOTUNE_THREAD), and timings come out at 5.12, 10.24, 20.48 s
        self.data = tf.data.Dataset.from_tensors((images, labels)).repeat().with_options(NO_AUTOTUNE_THREAD)
        self.images = tf.data.Dataset.from_tensors(images).repeat().with_options(NO_AUTOTUNE_THREAD)
        self.compiled = None

    def infer(self, steps):
        self.model.predict(self.images, steps=2, verbose=0)
        start = time.perf_counter()
        self.model.predict(self.images, steps=steps, verbose=0)
        return steps / (time.perf_counter() - start)

    def train_as_compiled(self, steps):
        """``fit`` as train.py compiles it (its optimizer, metrics and ``steps_per_execution``)."""
        return self._fit(steps, self.model._steps_per_execution.numpy().item())

    def train(self, steps, steps_per_execution):
        """``fit`` compiled here: plain SGD with momentum, ``steps_per_execution`` as given."""
        if self.compiled != steps_per_execution:
            self.model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                               keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                               steps_per_execution=steps_per_execution)
            self.compiled = None
        return self._fit(steps, steps_per_execution)

    def _fit(self, steps, spe):
        """Images/s of ``fit`` over about ``steps`` steps (whole executions), after a warm-up when newly compiled."""
        if self.compiled != spe:
            self.model.fit(self.data, steps_per_epoch=2 * spe, epochs=1, verbose=0)
            self.compiled = spe
        steps = max(spe, steps // spe * spe)
        start = time.perf_counter()
        self.model.fit(self.data, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps / (time.perf_counter() - start)


def _timed(step, steps):
    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="jianshu_resnet_50", help="registered model to compare")
    p.add_argument("--size", type=int, default=224, help="input side")
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    p.add_argument("--repeat", type=int, default=2, help="interleaved repeats (the median is shown)")
    p.add_argument("--precisions", default="float32,mixed_bfloat16",
                   help="comma-separated precisions to measure (float32 first: the others are compared to it)")
    p.add_argument("--json", default=str(REPO / "bench/results/resnet.json"), help="where to write the figures")
    args = p.parse_args()

    precisions = args.precisions.split(",")
    measures = {}
    for precision in precisions:
        old = Legacy(args.model, args.size, args.batch, precision)
        new = Modern(modern.build(args.model, NUM_CLASSES, input_shape=(args.size, args.size, 3),
                                  precision=precision), args.batch)
        run = run_spec(args.model, args.size, precision)
        product = Modern(compiled_model(run, 1, steps_per_execution(DEFAULT_SAVE_EVERY, DEFAULT_SAVE_EVERY)), args.batch)
        keras.mixed_precision.set_global_policy(precision)  # what keras.applications builds under
        ref = Modern(keras.applications.ResNet50(weights=None, classes=NUM_CLASSES, classifier_activation=None,
                                                 input_shape=(args.size, args.size, 3)), args.batch)
        keras.mixed_precision.set_global_policy("float32")
        measures.update({
            f"legacy_infer_{precision}": lambda old=old: old.infer(args.steps),
            f"legacy_train_{precision}": lambda old=old: old.train(args.steps),
            f"modern_infer_{precision}": lambda new=new: new.infer(args.steps),
            f"modern_train_{precision}": lambda product=product: product.train_as_compiled(args.steps),
            f"modern_train_spe1_{precision}": lambda new=new: new.train(args.steps, 1),
            f"keras_resnet50_infer_{precision}": lambda ref=ref: ref.infer(args.steps),
            f"keras_resnet50_train_spe1_{precision}": lambda ref=ref: ref.train(args.steps, 1),
        })
        if precision == "float32":
            measures["modern_train_spe4_float32"] = lambda new=new: new.train(args.steps, 4)
    runs = {k: [] for k in measures}
    for _ in range(args.repeat):
        for key, measure in measures.items():
            runs[key].append(measure() * args.batch)
    figures = {k: statistics.median(v) for k, v in runs.items()}
    ratios = {}
    for precision in precisions:
        for what in ("train", "train_spe1", "infer"):
            legacy_what = what.replace("_spe1", "")
            ratios[f"modern_vs_legacy_{what}_{precision}"] = (figures[f"modern_{what}_{precision}"]
                                                             / figures[f"legacy_{legacy_what}_{precision}"])
        if precision != precisions[0]:
            for key in ("legacy_train", "modern_train", "modern_train_spe1", "keras_resnet50_train_spe1", "legacy_infer",
                        "modern_infer"):
                ratios[f"{key}_{precision}_vs_{precisions[0]}"] = (figures[f"{key}_{precision}"]
                                                                  / figures[f"{key}_{precisions[0]}"])
    if "modern_train_spe4_float32" in figures:
        ratios["modern_vs_legacy_train_spe4_float32"] = (figures["modern_train_spe4_float32"]
                                                         / figures["legacy_train_float32"])
    figures.update(ratios)

    print(f"{args.model}, {args.size}x{args.size}, batch {args.batch}, images/s (median of {args.repeat}):")
    for key in measures:
        print(f"  {key:<44} {figures[key]:8.2f}")
    for key in ratios:
        print(f"  {key:<44} {figures[key]:8.2f} x")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**vars(args), **figures, "runs": runs}, indent=2) + "\n")
    print(f"  -> {args.json}")


if __name__ == "__main__":
    main()
