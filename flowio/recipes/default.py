"""The ``default`` recipe (the project's own, the articles' nets): squash to S×S, float32 in [0, 1].

Evaluation: ``tf.image.resize`` to S×S, bilinear, ``antialias=False``, then x / 255. Training: squash to
round(1.125·S), a random S×S crop, a random horizontal flip unless the run says ``flip_left_right: false``.
"""

import tensorflow as tf

from flowio.recipes.base import DECODE, Recipe, squash_augmentation, squash_for_training


def spec(image_size, flip):
    return {"recipe": "default", "decode": DECODE,
            "resize": {"size": [image_size, image_size], "method": "bilinear", "antialias": False, "aspect": "squash"},
            "scale": "float32 in [0, 1] (x / 255)", "train_augmentation": squash_augmentation(image_size, flip)}


def evaluate(images, image_size, record):
    return scale(tf.image.resize(images, [image_size, image_size], method="bilinear", antialias=False))


def scale(crop):
    return crop / 255.0


RECIPE = Recipe("default", spec, evaluate, squash_for_training, scale)
