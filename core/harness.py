"""The tiny problem both halves' harness files train on (legacy/harness.py, modern/harness.py): numpy only, so
that the two start from the same images, labels and weights without importing each other."""

import numpy as np

CLASSES = 3
IMAGE_SIZE = 8


def tiny_problem(seed=0, size=24):
    """``(images, labels, first weights by TF1 variable name)`` drawn with numpy; the twin draws the same.

    Images are 8x8 RGB in [0, 1), labels in 0..2.
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (size, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size)
    weights = {"conv1/weights": rng.normal(0, 0.3, (3, 3, 3, 4)), "conv1/biases": rng.normal(0, 0.1, 4),
               "logits/weights": rng.normal(0, 0.2, (4 * 4 * 4, CLASSES)), "logits/biases": rng.normal(0, 0.1, 3)}
    return images, labels, {name: value.astype(np.float32) for name, value in weights.items()}
