"""The ``inception`` recipe: research/slim's ``inception_preprocessing.preprocess_for_eval``, [-1, 1].

Evaluation: to [0, 1] (``convert_image_dtype``: x · (1/255)), ``tf.image.central_crop`` of 0.875 (its arithmetic,
in float32: ``inception_crop``), TF1's ``resize_bilinear`` to S×S (``align_corners=False``,
``half_pixel_centers=False``: sampling at x · in/out, not (x + ½) · in/out − ½ as ``tf.image.resize`` does), then
(x − 0.5) · 2. Training: default's squash, crop and flip, then the same [−1, 1] scaling; research/slim's
distorted bounding boxes and colour distortion are not reproduced.

research/slim's preprocessing_factory gives it to the inception nets; this project also gives it to resnet_v2
at 299, as research/slim's README does for its resnet_v2 checkpoints (the factory maps resnet_v2 to vgg).
"""

import tensorflow as tf

from flowio.recipes.base import DECODE, Recipe, resize_bilinear_tf1, squash_augmentation, squash_for_training

CROP = 0.875


def spec(image_size, flip):
    return {"recipe": "inception", "decode": DECODE, "scale": "x / 255, then (x - 0.5) * 2: [-1, 1]",
            "crop": {"central_fraction": CROP},
            "resize": {"size": [image_size, image_size], "method": "TF1 resize_bilinear",
                       "half_pixel_centers": False, "align_corners": False, "aspect": "squash"},
            "train_augmentation": squash_augmentation(image_size, flip)}


def inception_crop(images):
    """``tf.image.central_crop(images, 0.875)``: a border of ``int((side − side · 0.875) / 2)`` pixels cut from
    each side. tf.image computes it in float64, which TFLite's builtin ops do not take; in float32 it is the
    same number (side · 0.875 and side / 16 are exact below 2**21)."""
    shape = tf.shape(images)
    height, width = shape[-3], shape[-2]
    top, left = (tf.cast((tf.cast(n, tf.float32) * (1 - CROP)) / 2, tf.int32) for n in (height, width))
    return images[..., top:height - top, left:width - left, :]


def evaluate(images, image_size, record):
    images = inception_crop(images * (1.0 / 255.0))
    return (resize_bilinear_tf1(images, [image_size, image_size]) - 0.5) * 2.0


def scale(crop):
    return (crop / 255.0 - 0.5) * 2.0


RECIPE = Recipe("inception", spec, evaluate, squash_for_training, scale)
