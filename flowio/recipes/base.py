"""What a preprocessing recipe is (``Recipe``), and the pieces more than one recipe uses.

A recipe is one record of four functions, in its own module of this package (``default``, ``inception``,
``vgg``); ``flowio.reader`` runs them, ``flowio.recipes`` finds them by name:

* ``spec(image_size, flip)``: the ``preprocessing`` record a new run writes in ``run.json`` (``recipe`` names
  the code, the rest says what it does, and sets what a run must keep, such as vgg's sides);
* ``evaluate(images, image_size, record)``: float32 0..255 ``[(N,) H, W, 3]`` -> the model's input
  ``[(N,) S, S, 3]``, for validation, evaluation, use_model and the exports;
* ``train_resize(image, image_size, record, seed)``: training's resize of one float32 0..255 image before the
  random S×S crop and flip that every recipe shares (``flowio.reader.augment``); ``seed`` a stateless seed;
* ``scale(crop)``: that crop, 0..255, into the recipe's value range (what ``evaluate`` ends with).

Every function takes the run's own record, not this version's choice, so a run is read as it was trained.
"""

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

DECODE = "RGB uint8 (Pillow rules of flowio.images; JPEG dct_method=INTEGER_ACCURATE)"
AUGMENT_SCALE = 1.125  # default and inception train on random S×S crops of a round(1.125·S) squash


@dataclass(frozen=True)
class Recipe:
    name: str
    spec: Callable
    evaluate: Callable
    train_resize: Callable
    scale: Callable


def squash_augmentation(image_size, flip):
    """The ``train_augmentation`` record of ``squash_for_training``."""
    return {"resize": round(AUGMENT_SCALE * image_size), "crop": "random", "flip_left_right": bool(flip)}


def squash_for_training(image, image_size, record, seed):
    """default's and inception's training resize: squash to round(1.125·S), bilinear, no antialias."""
    big = round(AUGMENT_SCALE * image_size)
    return tf.image.resize(image, [big, big], method="bilinear", antialias=False)


def resize_bilinear_tf1(images, size):
    """TF1's ``tf.image.resize_bilinear(images, size, align_corners=False)``: ``half_pixel_centers=False``, the
    default until TF 2 (``tf.image.resize`` samples at half-pixel centres); [H, W, C] or [N, H, W, C]."""
    batched = images.shape.rank == 4
    out = tf.raw_ops.ResizeBilinear(images=images if batched else images[None], size=size, align_corners=False,
                                    half_pixel_centers=False)  # the op TF1's resize_bilinear ran
    return out if batched else out[0]
