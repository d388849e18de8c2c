"""FlowIO benchmark: conversion against Pillow's decode bound, its peak memory, and the reader's speed.

    python bench/flowio_bench.py [--images 3000] [--big 10000] [--json bench/results/flowio.json]

Prints a table and writes JSON. Everything is measured side by side in one run on generated JPEGs
(320x240, the size of a typical photo folder thumbnail set), so the ratios are what to compare:

* decode bound: read + Pillow decode + RGB conversion of every file, one process (what conversion must do);
* conversion with 1 and 2 workers (``scripts/flowio.py`` as a subprocess, process start to exit);
  the three are run in turn ``--repeat`` times and the medians compared;
* peak RSS of a conversion of ``--images`` and of ``--big`` small images (must not grow with the data set);
* the reader at 224x224 with training augmentation, batch 32 (``flowio.dataset``);
* how long a Keras ``fit`` over the reader takes from its last batch to its return, and the same with tf.data's
  autotuning thread on (``flowio.reader.NO_AUTOTUNE_THREAD`` says why it is off).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def make_images(root, count, size, classes=10):
    rng = np.random.default_rng(0)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=-1)
    for i in range(count):
        pixels = np.clip(base + rng.normal(0, 12, base.shape) + rng.integers(-60, 60, 3), 0, 255)
        folder = Path(root) / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:05d}.jpg", "JPEG", quality=90)


def decode_bound(root):
    files = sorted(p for p in Path(root).rglob("*.jpg"))
    start = time.perf_counter()
    for p in files:
        with Image.open(p) as img:
            img.load()
            img.convert("RGB")
    return len(files) / (time.perf_counter() - start)


def convert(root, out, workers):
    """Run scripts/flowio.py; return (images/s from process start to exit, peak RSS MiB of the run)."""
    count = sum(1 for _ in Path(root).rglob("*.jpg"))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts/flowio.py"), str(root), "--out", str(out),
                             "--workers", str(workers), "--overwrite", "--quiet"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"flowio.py failed with status {status}")
    return count / elapsed, usage.ru_maxrss / 1024


def reader(records, image_size=224, batch=32, steps=40):
    import flowio
    ds = flowio.dataset(str(records), "train", image_size, batch, training=True, repeat=True)
    it = iter(ds)
    for _ in range(3):
        next(it)
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    return steps * batch / (time.perf_counter() - start)


def fit_end_wait(records, steps=(10, 20, 30, 40), size=224, batch=16):
    """Seconds from a Keras ``fit``'s last batch to its return, summed over fits of ``steps`` steps, over the
    reader as it is and with tf.data's autotuning thread on again (what ``flowio.reader.NO_AUTOTUNE_THREAD``
    turns off: the wait depends on where the fit ends between the thread's wake-ups, hence several lengths)."""
    import tensorflow as tf
    import tf_keras as keras

    import flowio
    inputs = keras.Input((size, size, 3), name="images")
    x = keras.layers.Conv2D(32, 7, strides=4, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    model.compile(keras.optimizers.SGD(0.001), keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class LastBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.at = time.perf_counter()

    waits = {}
    for name, autotune in (("reader", False), ("reader, autotuning thread on", True)):
        options = tf.data.Options()
        options.autotune.enabled = autotune
        data = flowio.dataset(str(records), "train", size, batch, training=True, repeat=True).with_options(options)
        model.fit(data, steps_per_epoch=2, verbose=0)
        waits[name] = 0.0
        for n in steps:
            last = LastBatch()
            model.fit(data, steps_per_epoch=n, verbose=0, callbacks=[last])
            waits[name] += time.perf_counter() - last.at
    return waits


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=3000, help="photos for the speed figures")
    p.add_argument("--big", type=int, default=10000, help="small images for the memory figure")
    p.add_argument("--repeat", type=int, default=3, help="repeats of the speed figures (the median is shown)")
    p.add_argument("--json", default=str(REPO / "bench/results/flowio.json"), help="where to write the figures")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_images(tmp / "photos", args.images, (320, 240))
        make_images(tmp / "small", args.images, (64, 48))
        make_images(tmp / "big", args.big, (64, 48))
        # Interleaved repeats, median of each: this machine is shared and noisy.
        runs = [(decode_bound(tmp / "photos"), convert(tmp / "photos", tmp / "r1", 1),
                 convert(tmp / "photos", tmp / "r2", 2)) for _ in range(args.repeat)]
        bound = statistics.median(r[0] for r in runs)
        conv1, rss1 = statistics.median(r[1][0] for r in runs), max(r[1][1] for r in runs)
        conv2, rss2 = statistics.median(r[2][0] for r in runs), max(r[2][1] for r in runs)
        _, rss_small = convert(tmp / "small", tmp / "rs", 1)
        _, rss_big = convert(tmp / "big", tmp / "rb", 1)
        read = reader(tmp / "r1")
        waits = fit_end_wait(tmp / "r1")
    figures = {
        "decode_bound_img_s": bound,
        "convert_1_worker_img_s": conv1, "convert_2_workers_img_s": conv2,
        "convert_1_worker_vs_bound": conv1 / bound, "convert_2_workers_vs_bound": conv2 / bound,
        "peak_rss_mib_1_worker": rss1, "peak_rss_mib_2_workers": rss2,
        f"peak_rss_mib_{args.images}_small": rss_small, f"peak_rss_mib_{args.big}_small": rss_big,
        "peak_rss_big_vs_small": rss_big / rss_small,
        "reader_224_augmented_img_s": read,
        "fit_end_wait_s": waits["reader"], "fit_end_wait_s_autotune_thread": waits["reader, autotuning thread on"],
    }
    rows = [
        ("Pillow decode bound (1 process)", f"{bound:8.1f} img/s", ""),
        ("flowio, 1 worker", f"{conv1:8.1f} img/s", f"{conv1 / bound:.2f} x bound"),
        ("flowio, 2 workers", f"{conv2:8.1f} img/s", f"{conv2 / bound:.2f} x bound"),
        (f"peak RSS, {args.images} small images", f"{rss_small:8.1f} MiB", ""),
        (f"peak RSS, {args.big} small images", f"{rss_big:8.1f} MiB", f"{rss_big / rss_small:.2f} x"),
        ("reader, 224x224 augmented, batch 32", f"{read:8.1f} img/s", ""),
        ("4 fits: last batch to return, reader", f"{waits['reader']:8.3f} s", ""),
        ("  the same, tf.data autotuning thread on", f"{waits['reader, autotuning thread on']:8.3f} s", ""),
    ]
    print(f"flowio benchmark: {args.images} JPEGs 320x240, {os.cpu_count()} cores")
    for name, value, ratio in rows:
        print(f"  {name:<40} {value:>14}  {ratio}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"  -> {args.json}")


if __name__ == "__main__":
    main()
