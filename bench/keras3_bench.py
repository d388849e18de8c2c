"""keras3 against legacy and modern: training and inference images/s of the same nets, interleaved in one run.

    python bench/keras3_bench.py [--models jianshu_resnet_50,inception_v3,vgg_16] [--batch 16] [--steps 4]
                                 [--repeat 2] [--halves legacy,modern,keras3-tensorflow,keras3-jax,keras3-jax-xla]

Each measurement is a process of its own (Keras 3's backend is fixed per process), started in turn for every half
and model, ``--repeat`` rounds, the median shown: the model at its default size, as train.py compiles it
(legacy: ``training_graph``'s step in a Session; modern and keras3: ``compiled_model`` and ``fit``; keras3's
``SlimModel`` step), on random inputs, float32, and ``predict`` (legacy: ``Session.run`` of the logits) for
inference. The first ``fit`` (tracing, and on JAX XLA's compilation) is timed apart, as ``compile_s``. The ratio the
goal is about is keras3 on TensorFlow / legacy training images/s (>= 0.95); keras3 on JAX is reported, with XLA's
default CPU options and with ``XLA_OPTIONS`` (``keras3-jax-xla``).

XLA's CPU options (jaxlib 0.10.2, ``XLA_FLAGS=--help``): the fusion types oneDNN and XNNPACK can take are "dot,
eltwise, and reduce", convolutions not among them. Probed on two 3x3 convolutions of 16x56x56x64 and their
gradient (``jax.jit(jax.grad(...))``): 507 ms a step by default, 439 ms with ``XLA_OPTIONS``, 466-537 ms with
XNNPACK's graph fusion, fast math or Eigen on one thread, and 162 ms in TensorFlow. ``XLA_OPTIONS`` is the best of
those; none closes the gap.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HALVES = ("legacy", "modern", "keras3-tensorflow", "keras3-jax", "keras3-jax-xla")
XLA_OPTIONS = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot,eltwise"
NUM_CLASSES = 10


def measure(half, model, batch, steps, size=None):
    """``{train, infer, compile_s}`` of one half and model at ``size`` (default: the model's) in this process
    (images/s, seconds). A half ending in ``-jit`` compiles keras3's steps with XLA (``jit_compile=True``, which
    Keras 3's ``"auto"`` leaves off on a TensorFlow CPU)."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from core import models
    from core.run_dir import Run
    size = models.default_input_size(model) if size is None else size
    run = Run.in_memory(half.split("-")[0], model, NUM_CLASSES, size, lr=0.01, learning_rate_decay_type="fixed",
                        batch_size=batch)
    if half == "legacy":
        from resnet_bench import Legacy
        legacy = Legacy(model, size, batch, "float32")
        start = time.perf_counter()
        legacy.sess.run(legacy.train_op)
        compile_s = time.perf_counter() - start
        return {"train": legacy.train(steps) * batch, "infer": legacy.infer(steps) * batch, "compile_s": compile_s}
    import tensorflow as tf
    from flowio.reader import NO_AUTOTUNE_THREAD
    images = tf.random.uniform([batch, size, size, 3])
    labels = tf.random.uniform([batch], 0, NUM_CLASSES, dtype=tf.int64)
    features = images
    if half == "modern":
        from modern.train import compiled_model
        net = compiled_model(run, 1)
        if models.aux_scopes(model):  # its training model takes the labels too, for the auxiliary loss
            features = (images, labels)
    else:
        from keras3.train import compiled_model
        net = compiled_model(run, 1)
        if half.endswith("-jit"):
            net.jit_compile = True
        labels = tf.one_hot(labels, NUM_CLASSES)
    data = tf.data.Dataset.from_tensors((features, labels)).repeat().with_options(NO_AUTOTUNE_THREAD)
    pixels = tf.data.Dataset.from_tensors((features,)).repeat().with_options(NO_AUTOTUNE_THREAD)
    start = time.perf_counter()
    net.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
    compile_s = time.perf_counter() - start
    net.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
    start = time.perf_counter()
    net.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    train = steps * batch / (time.perf_counter() - start)
    net.predict(pixels, steps=2, verbose=0)
    start = time.perf_counter()
    net.predict(pixels, steps=steps, verbose=0)
    return {"train": train, "infer": steps * batch / (time.perf_counter() - start), "compile_s": compile_s}


def worker(half, model, batch, steps):
    """One measurement in a new process: its figures, from the JSON line it prints."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}
    if half.startswith("keras3-"):
        env["KERAS_BACKEND"] = half.split("-")[1]
    if half.endswith("-xla"):
        env["XLA_FLAGS"] = XLA_OPTIONS
    proc = subprocess.run([sys.executable, __file__, "--worker", half, "--models", model, "--batch", str(batch),
                           "--steps", str(steps)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{half} {model}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="jianshu_resnet_50,inception_v3,vgg_16", help="comma-separated models")
    p.add_argument("--halves", default=",".join(HALVES), help="comma-separated, of " + ", ".join(HALVES))
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--steps", type=int, default=4, help="timed steps per measurement")
    p.add_argument("--repeat", type=int, default=2, help="interleaved rounds (the median is shown)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--json", default=str(REPO / "bench/results/keras3.json"), help="where to write the figures")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.models, args.batch, args.steps)))
        return
    models, halves = args.models.split(","), args.halves.split(",")
    runs = {(h, m): [] for m in models for h in halves}
    for _ in range(args.repeat):
        for model in models:
            for half in halves:
                try:
                    runs[half, model].append(worker(half, model, args.batch, args.steps))
                except RuntimeError as failed:  # the other measurements go on; the table says which failed
                    print(f"failed: {failed}", file=sys.stderr, flush=True)
    figures = {}
    for (half, model), results in runs.items():
        for key in ("train", "infer", "compile_s"):
            if results:
                figures[f"{model} {half} {key}"] = statistics.median(r[key] for r in results)
    print(f"images/s, batch {args.batch}, each model at its default size (median of {args.repeat}):")
    for model in models:
        for half in halves:
            if f"{model} {half} train" not in figures:
                print(f"  {model:<18} {half:<18} failed (above)")
                continue
            train, infer = figures[f"{model} {half} train"], figures[f"{model} {half} infer"]
            line = f"  {model:<18} {half:<18} train {train:7.2f}  infer {infer:7.2f}"
            if f"{model} legacy train" in figures and half != "legacy":
                line += (f"  ({train / figures[f'{model} legacy train']:.2f}x / "
                         f"{infer / figures[f'{model} legacy infer']:.2f}x legacy)")
            print(line + f"  first step {figures[f'{model} {half} compile_s']:.1f} s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**vars(args), "figures": figures,
                                           "runs": {f"{m} {h}": r for (h, m), r in runs.items()}}, indent=2) + "\n")
    print(f"  -> {args.json}")


if __name__ == "__main__":
    main()
