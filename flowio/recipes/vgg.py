"""The ``vgg`` recipe: research/slim's ``vgg_preprocessing``, RGB means subtracted from 0..255.

Evaluation (``preprocess_for_eval``): aspect-preserving resize of the smaller side to R (TF1's ``resize_bilinear``;
float32 scale = R / smaller, each side ``rint(side · scale)`` as slim's ``_smallest_size_at_least`` does since
tensorflow/models#3355; 2016 slim truncated with ``tf.to_int32``, which can leave the smaller side one short:
1080×1920 to 224 gave 223×398), a central S×S crop at offset ``(side − S) // 2``, then the RGB means (123.68,
116.78, 103.94) subtracted, no scaling. R is research/slim's ``_RESIZE_SIDE_MIN`` = 256 at 224 ≤ S ≤ 256
(``SLIM_SIZES``: the default sizes of vgg, resnet_v1, alexnet_v2 and overfeat, 224 and 231); round(S · 8 / 7)
below and above, the project's rule (slim's fixed 256 would keep a 32×32 patch of a 256-pixel image at S = 32,
and cannot hold an S×S crop above 256). Training (``preprocess_for_train``): the same resize to a side drawn
uniformly from R..2R (slim's ``_RESIZE_SIDE_MIN``..``_RESIZE_SIDE_MAX`` = 256..512 where R is 256), then the
shared random S×S crop and flip, and the means subtracted.

A record holds its R (``resize.smaller_side``), its training range and ``resize.rounding``; one without
``rounding`` was written before the rint and is read with truncation, so an old run is evaluated, predicted,
exported and resumed with the sides it was trained on.

research/slim's preprocessing_factory gives it to vgg and resnet_v1 (and resnet_v2); alexnet_v2 and overfeat are
not in the factory: this project gives them vgg's, the recipe of the nets they were published beside.
"""

import tensorflow as tf

from flowio.recipes.base import DECODE, Recipe, resize_bilinear_tf1

MEANS = (123.68, 116.78, 103.94)
SLIM_SIZES = range(224, 257)  # where research/slim's sides apply: 256 holds the S×S crop, 224 is slim's size


def resize_side(image_size):
    """The smaller side R for a new run at ``image_size``: research/slim's 256 over ``SLIM_SIZES``, round(S · 8 / 7)
    elsewhere."""
    return 256 if image_size in SLIM_SIZES else round(image_size * 8 / 7)


def spec(image_size, flip):
    side = resize_side(image_size)
    # rounding: the new sides' (rint(side · scale)); a record without it predates it and truncates
    return {"recipe": "vgg", "decode": DECODE, "scale": f"0..255 minus the RGB means {list(MEANS)}",
            "resize": {"smaller_side": side, "rounding": "rint", "method": "TF1 resize_bilinear",
                       "half_pixel_centers": False, "align_corners": False, "aspect": "preserved"},
            "crop": {"size": [image_size, image_size], "where": "central"},
            "train_augmentation": {"smaller_side": [side, 2 * side], "crop": "random", "flip_left_right": bool(flip)}}


def sides(record):
    """``(side, (low, high), rounding)`` of a record: eval's smaller side, training's range of it, and how the
    other side is rounded (``truncate`` for a record written before ``rounding`` was)."""
    resize = record["resize"]
    low, high = record["train_augmentation"]["smaller_side"]
    return resize["smaller_side"], (low, high), resize.get("rounding", "truncate")


def aspect_preserving_resize(images, side, rounding="rint"):
    """The resize of the smaller side to ``side``: scale = side / smaller in float32, each side
    ``rint(side · scale)`` (research/slim's ``_smallest_size_at_least`` today), or with ``rounding="truncate"``
    ``int(side · scale)`` (2016 slim's, which runs recorded before the rint keep)."""
    shape = tf.cast(tf.shape(images)[-3:-1], tf.float32)
    sides = shape * (tf.cast(side, tf.float32) / tf.reduce_min(shape))
    if rounding == "rint":
        sides = tf.math.rint(sides)
    elif rounding != "truncate":
        raise ValueError(f"rounding must be rint or truncate, not {rounding!r}")
    return resize_bilinear_tf1(images, tf.cast(sides, tf.int32))


def central_crop(images, height, width):
    """The central crop of a [(N,) H, W, C] image at offset ((H − height) // 2, (W − width) // 2)."""
    shape = tf.shape(images)
    top, left = (shape[-3] - height) // 2, (shape[-2] - width) // 2
    return images[..., top:top + height, left:left + width, :]


def evaluate(images, image_size, record):
    side, _, rounding = sides(record)
    return scale(central_crop(aspect_preserving_resize(images, side, rounding), image_size, image_size))


def train_resize(image, image_size, record, seed):
    _, (low, high), rounding = sides(record)
    side = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, 2), minval=low,
                                       maxval=high + 1, dtype=tf.int32)
    return aspect_preserving_resize(image, side, rounding)


def scale(crop):
    return crop - tf.constant(MEANS, tf.float32)


RECIPE = Recipe("vgg", spec, evaluate, train_resize, scale)
