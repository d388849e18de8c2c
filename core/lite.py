"""Prediction without TensorFlow: a run's ``model.tflite`` (``modern/export.py``) run by LiteRT on decoded pixels.

``import tensorflow`` alone costs about 4 s and 640 MiB here; ``ai-edge-litert`` loads a ResNet-50 and answers
in a fraction of a second. Nothing here imports TensorFlow. The caller decodes the images (flowio's
``load_image``: Pillow, which TensorFlow's ``decode_jpeg(dct_method="INTEGER_ACCURATE")`` equals); the model
resizes and scales inside.
"""

import importlib.util
import os

from core.quiet import hidden_stderr
from core.run_dir import TFLITE


def installed():
    """Whether the LiteRT runtime (the ``ai-edge-litert`` package, the ``lite`` extra) can be imported."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def model_path(run):
    """Where the run's ``.tflite`` is (or would be, once exported)."""
    return run.path((run.export or {}).get("tflite", TFLITE))


def current(run):
    """Whether the run's folder holds a ``model.tflite`` exported from its present best weights."""
    return (run.export is not None and os.path.exists(model_path(run))
            and run.export.get("best_epoch") == (run.best or {}).get("epoch"))


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
