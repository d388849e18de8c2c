"""Exporting a trained run for serving: ``model.tflite`` (LiteRT) and ``saved_model/`` (TF Serving).

No twin in ``legacy/``: a run of either half is exported through the modern model, a legacy run's weights
loaded by name (docs/DESIGN.md §7's parity makes it the same network). TF1 exported with ``SavedModelBuilder`` and
``tf.compat.v1.lite.TFLiteConverter.from_session``; a ``tf.Module`` with ``tf.function`` signatures replaces both.

* ``model.tflite``: signature ``classify_pixels``, input ``images``: ``uint8 [N, H, W, 3]``, decoded RGB of any
  size (one size per batch); outputs ``probabilities`` and ``logits`` ``[N, C]``. The run's preprocessing, as its
  ``run.json`` recorded it, runs inside (``flowio.preprocess``: ``default``'s bilinear squash and / 255, or
  research/slim's ``inception`` / ``vgg`` eval, whose TF1 ``resize_bilinear`` becomes TFLite's RESIZE_BILINEAR
  with ``half_pixel_centers=False``), so a caller only decodes. Builtin ops only; no converter optimizations
  (quantization would cost the 1e-4 agreement with TensorFlow).
* ``saved_model/``: signature ``serving_default(images: string [N])`` takes encoded JPEG / PNG bytes and decodes
  them as flowio's reader does (JPEG with ``dct_method="INTEGER_ACCURATE"``). TensorFlow's decoders ignore
  EXIF orientation: send upright images. ``classify_pixels`` is the uint8 signature of the ``.tflite``.

Both are written under temporary names and renamed; ``run.json`` records under ``export`` which weights (best
epoch) they hold, so ``use_model.py --backend auto`` uses them only while they are current.
"""

import os
import shutil

import tensorflow as tf

from core import checkpoints, files, models
from core.run_dir import SAVED_MODEL, TFLITE
from flowio.reader import decode, preprocess
from modern.weights import model_from


def trained_model(run):
    """``(model, description)``: the run's best (else last) weights in the modern model, whichever half trained it."""
    values, source = checkpoints.read(run.folder, models.scope(run.model))
    return model_from(run, values, source), source


class Serving(tf.Module):
    """The model with the run's preprocessing (its ``run.json`` record, as it trained) in front and a softmax behind."""

    def __init__(self, model, image_size, preprocessing):
        super().__init__()
        self.model, self.image_size, self.preprocessing = model, image_size, preprocessing

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def classify_pixels(self, images):
        # resized as float32: TFLite's builtin RESIZE_BILINEAR takes no uint8 input (the same numbers: TensorFlow's
        # kernel computes in float either way)
        return self._outputs(preprocess(tf.cast(images, tf.float32), self.image_size, self.preprocessing))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def classify_encoded(self, images):
        size = self.image_size
        pixels = tf.map_fn(lambda encoded: preprocess(decode(encoded), size, self.preprocessing), images,
                           fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
        return self._outputs(pixels)

    def _outputs(self, pixels):
        logits = self.model(pixels, training=False)
        return {"probabilities": tf.nn.softmax(logits), "logits": logits}


def export(run):
    """Write ``model.tflite`` and ``saved_model/`` into the run's folder; return ``run.json``'s ``export`` entry."""
    model, source = trained_model(run)
    serving = Serving(model, run.image_size, run.preprocessing)
    target = run.path(SAVED_MODEL)
    # the previous export is kept as .old- (not .tmp-: while the new one is renamed in, it may be the only one)
    tmp, old = files.temporary_name(target), run.path(f".old-{SAVED_MODEL}")
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        tf.saved_model.save(serving, tmp, signatures={
            "serving_default": serving.classify_encoded.get_concrete_function(),
            "classify_pixels": serving.classify_pixels.get_concrete_function()})
        # from the SavedModel just written: converting the concrete function instead traces and saves it all again
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["classify_pixels"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
        with files.atomic(run.path(TFLITE)) as tmp_tflite, open(tmp_tflite, "wb") as f:
            f.write(flatbuffer)
        if os.path.exists(target):
            os.rename(target, old)
        os.rename(tmp, target)
    finally:  # a failed export (a full disk, a converter error) leaves neither temporary behind
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.exists(target):  # the previous export goes only once the new one is in place
            shutil.rmtree(old, ignore_errors=True)

    entry = {"tflite": TFLITE, "saved_model": SAVED_MODEL, "weights": source,
             "best_epoch": (run.best or {}).get("epoch")}
    run.update(export=entry)  # only the export entry is ours to change
    return entry
