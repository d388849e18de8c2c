"""ResNet benchmark: legacy vs modern jianshu_resnet_50, forward and forward+backward, side by side.

    python bench/resnet_bench.py [--size 224] [--batch 16] [--steps 8] [--repeat 2] [--json ...]

Images/s on random inputs generated on the device, so only the network is measured:

* legacy: ``Session.run`` of the logits (inference) and of a MomentumOptimizer step with UPDATE_OPS;
* modern: ``model.predict`` and ``model.fit`` (SGD with momentum, ``steps_per_execution`` 1 and 4);
* reference: ``tf_keras.applications.ResNet50(weights=None)`` through the same ``predict`` / ``fit``.

Each measurement is repeated ``--repeat`` times, interleaved, and the median is shown; the ratio that the
goal is about is modern / legacy training images/s (>= 0.95). DESIGN §8 has the figures this machine gave.
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
import modern  # noqa: E402
from legacy.slim_compat import tf as tf1  # noqa: E402

NUM_CLASSES = 10


class Legacy:
    def __init__(self, name, size, batch):
        self.graph = tf1.Graph()
        with self.graph.as_default():
            images = tf1.random.uniform([batch, size, size, 3])
            labels = tf1.random.uniform([batch], 0, NUM_CLASSES, dtype=tf1.int64)
            with tf1.variable_scope("train"):
                logits, _ = legacy.build(name, images, NUM_CLASSES, is_training=True)
                loss = tf1.losses.sparse_softmax_cross_entropy(labels, logits) + tf1.losses.get_regularization_loss()
                with tf1.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
                    self.train_op = tf1.train.MomentumOptimizer(0.01, 0.9).minimize(loss)
            with tf1.variable_scope("infer"):
                self.logits, _ = legacy.build(name, images, NUM_CLASSES, is_training=False)
            self.sess = tf1.Session(graph=self.graph)
            self.sess.run(tf1.global_variables_initializer())

    def infer(self, steps):
        return _timed(lambda: self.sess.run(self.logits), steps)

    def train(self, steps):
        return _timed(lambda: self.sess.run(self.train_op), steps)


class Modern:
    def __init__(self, model, batch):
        self.model, self.batch = model, batch
        size = model.input_shape[1]
        images = tf.random.uniform([batch, size, size, 3])
        labels = tf.random.uniform([batch], 0, NUM_CLASSES, dtype=tf.int64)
        self.data = tf.data.Dataset.from_tensors((images, labels)).repeat()
        self.images = tf.data.Dataset.from_tensors(images).repeat()
        self.compiled = None

    def infer(self, steps):
        self.model.predict(self.images, steps=2, verbose=0)
        start = time.perf_counter()
        self.model.predict(self.images, steps=steps, verbose=0)
        return steps / (time.perf_counter() - start)

    def train(self, steps, steps_per_execution):
        if self.compiled != steps_per_execution:
            self.model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                               keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                               steps_per_execution=steps_per_execution)
            self.model.fit(self.data, steps_per_epoch=2 * steps_per_execution, epochs=1, verbose=0)
            self.compiled = steps_per_execution
        steps = max(steps_per_execution, steps // steps_per_execution * steps_per_execution)
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
    p.add_argument("--json", default=str(REPO / "bench/results/resnet.json"), help="where to write the figures")
    args = p.parse_args()

    old = Legacy(args.model, args.size, args.batch)
    new = Modern(modern.build(args.model, NUM_CLASSES, input_shape=(args.size, args.size, 3)), args.batch)
    ref = Modern(keras.applications.ResNet50(weights=None, classes=NUM_CLASSES, classifier_activation=None,
                                             input_shape=(args.size, args.size, 3)), args.batch)
    measures = {
        "legacy_infer": lambda: old.infer(args.steps),
        "legacy_train": lambda: old.train(args.steps),
        "modern_infer": lambda: new.infer(args.steps),
        "modern_train_spe1": lambda: new.train(args.steps, 1),
        "modern_train_spe4": lambda: new.train(args.steps, 4),
        "keras_resnet50_infer": lambda: ref.infer(args.steps),
        "keras_resnet50_train_spe1": lambda: ref.train(args.steps, 1),
    }
    runs = {k: [] for k in measures}
    for _ in range(args.repeat):
        for key, measure in measures.items():
            runs[key].append(measure() * args.batch)
    figures = {k: statistics.median(v) for k, v in runs.items()}
    figures["modern_vs_legacy_train_spe1"] = figures["modern_train_spe1"] / figures["legacy_train"]
    figures["modern_vs_legacy_train_spe4"] = figures["modern_train_spe4"] / figures["legacy_train"]
    figures["modern_vs_legacy_infer"] = figures["modern_infer"] / figures["legacy_infer"]

    print(f"{args.model}, {args.size}x{args.size}, batch {args.batch}, images/s (median of {args.repeat}):")
    for key in measures:
        print(f"  {key:<28} {figures[key]:8.2f}")
    for key in ("modern_vs_legacy_infer", "modern_vs_legacy_train_spe1", "modern_vs_legacy_train_spe4"):
        print(f"  {key:<28} {figures[key]:8.2f} x")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**vars(args), **figures}, indent=2) + "\n")
    print(f"  -> {args.json}")


if __name__ == "__main__":
    main()
