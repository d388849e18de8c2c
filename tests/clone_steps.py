"""One training step of the modern half on two CPU replicas and on one, for tests/test_clones.py.

Run as ``python tests/clone_steps.py MODEL BATCH.npz OUT.npz``: a process of its own, because ``modern.train.deploy``
splits the CPU into two logical devices, which TensorFlow allows only before its first op. From the same first
weights, with slim's ``sgd`` (so a step is linear in the gradient), it takes one ``fit`` step of
``modern.train.compiled_model`` under the ``MirroredStrategy`` that ``deploy(2, clone_on_cpu=True)`` makes, on the
whole batch (``mirrored``), and one without a strategy on the whole batch (``whole``), on its first half
(``first``) and on its second (``second``). ``OUT.npz`` holds ``CASE/WEIGHT NAME`` arrays and ``CASE/loss``.
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modern import train  # noqa: E402

from helpers import CLONE_LR, clone_run  # noqa: E402


def step(model, images, labels):
    history = model.fit(tf.data.Dataset.from_tensors((images, labels)), epochs=1, steps_per_epoch=1, verbose=0)
    return {"loss": np.float32(history.history["loss"][0]),
            **{w.name: value for w, value in zip(model.weights, model.get_weights())}}


def main(model_name, batch_path, out_path):
    assert train.deploy(2, clone_on_cpu=True)
    mirrored = train.strategy()
    assert mirrored.num_replicas_in_sync == 2, mirrored
    batch = np.load(batch_path)
    images, labels = batch["images"], batch["labels"]
    run = clone_run("modern", model_name, len(images))
    first = None
    results = {}
    half = len(images) // 2
    for case, (x, y) in {"mirrored": (images, labels), "whole": (images, labels),
                         "first": (images[:half], labels[:half]), "second": (images[half:], labels[half:])}.items():
        strategy = mirrored if case == "mirrored" else tf.distribute.get_strategy()
        with strategy.scope():
            model = train.compiled_model(run, decay_steps=1000)
        if first is None:
            first = model.get_weights()
        model.set_weights(first)
        results.update({f"{case}/{name}": value for name, value in step(model, x, y).items()})
    results.update({f"initial/{w.name}": value for w, value in zip(model.weights, first)})
    np.savez(out_path, **results)
    print(f"{len(results)} arrays, learning rate {CLONE_LR}")


if __name__ == "__main__":
    main(*sys.argv[1:])
