"""Prediction without TensorFlow: a run's ``model.tflite`` (``modern/export.py``) run by LiteRT.

``import tensorflow`` alone costs about 4 s and 640 MiB here; ``ai-edge-litert`` loads a ResNet-50 and answers
in a fraction of a second. Nothing here imports TensorFlow: images are decoded by Pillow with flowio's rules
(``flowio.images.load_image``, which TensorFlow's ``decode_jpeg(dct_method="INTEGER_ACCURATE")`` equals), and
the model resizes and scales inside.
"""

import importlib.util
import os

from flowio.images import load_image  # noqa: F401 -- what a caller decodes with
from flowio.quiet_tf import hidden_stderr


def installed():
    """Whether the LiteRT runtime (the ``ai-edge-litert`` package, the ``lite`` extra) can be imported."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def model_path(run_dir, run):
    """Where the run's ``.tflite`` is (or would be, once exported)."""
    return os.path.join(run_dir, (run.get("export") or {}).get("tflite", "model.tflite"))


def current(run_dir, run):
    """Whether ``run_dir`` holds a ``model.tflite`` exported from its present best weights."""
    export = run.get("export")
    return (export is not None and os.path.exists(model_path(run_dir, run))
            and export.get("best_epoch") == (run.get("best") or {}).get("epoch"))


class LitePredictor:
    """``predictor(images uint8 [N, H, W, 3]) -> probabilities [N, C]`` from a ``.tflite`` file (``logits`` too).

    Through the model's ``classify_pixels`` signature, which resizes its input to each batch's size.
    """

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter
        with hidden_stderr():
            interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count())
            self.runner = interpreter.get_signature_runner("classify_pixels")

    def outputs(self, images):
        with hidden_stderr():  # LiteRT announces its XNNPACK delegate on descriptor 2 when it plans a size
            return self.runner(images=images)

    def logits(self, images):
        return self.outputs(images)["logits"]

    def __call__(self, images):
        return self.outputs(images)["probabilities"]
