"""What replaces a frozen inference graph in TF2: a SavedModel and a TFLite file of the same network
(twin: legacy/freeze.py).

TF2 has no public "fold the variables into constants" step: a ``tf.function`` captures the model's variables,
``tf.saved_model.save`` writes the graph and the variables side by side, and the TFLite converter does the
folding when it converts. The contract of slim's ``export_inference_graph`` is kept, so a caller of the frozen
graph changes only how it loads the model:

* the input is named ``input``: float32 ``[N, S, S, 3]``, already preprocessed (no decoding or resizing inside;
  ``modern/export.py``'s ``Serving`` is the run's export, which takes uint8 or encoded images and
  preprocesses, so it does not fit this contract);
* the outputs are ``logits`` and ``predictions`` (the softmax), by name in the signature ``serving_default``
  instead of by graph node (``<scope>/Predictions/Reshape_1``);
* the weights come from the same TF1 checkpoint, assigned by name (``modern.naming``).

The frozen ``.pb`` itself cannot be run from here (importing a ``GraphDef`` needs ``tf.compat.v1``:
``tf.compat.v1.wrap_function`` + ``tf.graph_util.import_graph_def``, which tests/test_idioms.py shows).

Sections, in the same order as the twin: the inference graph, weights, writing, running.
"""

import os
import shutil

import tensorflow as tf

import modern
from core import files, lite, models
from core.quiet import hidden_stderr
from core.run_dir import SAVED_MODEL, TFLITE
from modern import naming

INPUT = "input"  # export_inference_graph's placeholder name, now the signature's input
SIGNATURE = "serving_default"


# --- the inference graph ------------------------------------------------------------------------------------

class Inference(tf.Module):
    """``model`` behind one signature: ``input`` float32 ``[None, S, S, 3]`` -> ``logits``, ``predictions``
    (``S = image_size``: a subclassed model has no input shape of its own)."""

    def __init__(self, model, image_size):
        super().__init__()
        self.model = model
        spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name=INPUT)
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, images):
        logits = self.model(images, training=False)
        return {"logits": logits, "predictions": tf.nn.softmax(logits)}


def inference_model(name, num_classes, image_size=None):
    """Model ``name`` at ``image_size`` (its default size when None); Keras layers know no training mode until
    called, so the same model serves both."""
    size = image_size or models.default_input_size(name)
    return modern.build(name, num_classes, input_shape=(size, size, 3))


# --- weights ------------------------------------------------------------------------------------------------

def from_checkpoint(name, num_classes, checkpoint, image_size=None):
    """The inference model with every weight assigned by name from ``checkpoint`` (a TF1 Saver prefix or its
    folder, a modern ``.h5``, a run directory): what freeze_graph's restore did."""
    model = inference_model(name, num_classes, image_size)
    naming.load(model, checkpoint)
    return model


# --- writing ------------------------------------------------------------------------------------------------

def export(model, image_size, folder):
    """Write ``folder/saved_model`` and ``folder/model.tflite`` (builtin ops, no optimizations: quantization would
    cost the agreement with TensorFlow), each under a temporary name, then renamed; return their paths."""
    saved, tflite = os.path.join(folder, SAVED_MODEL), os.path.join(folder, TFLITE)
    inference = Inference(model, image_size)
    with files.atomic(saved) as tmp_saved:
        tf.saved_model.save(inference, tmp_saved, signatures={SIGNATURE: inference.serve.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp_saved, signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        with files.atomic(tflite) as tmp_tflite, open(tmp_tflite, "wb") as f:
            f.write(converter.convert())
        shutil.rmtree(saved, ignore_errors=True)  # os.replace takes the folder's place only when it is gone
    return saved, tflite


# --- running ------------------------------------------------------------------------------------------------

class SavedModel:
    """``saved(images) -> {"logits": array, "predictions": array}`` through the SavedModel's signature (no Python
    model code needed: what the frozen graph gave its users)."""

    def __init__(self, path):
        self.loaded = tf.saved_model.load(str(path))
        self.signature = self.loaded.signatures[SIGNATURE]

    def __call__(self, images):
        return {key: value.numpy() for key, value in self.signature(**{INPUT: tf.constant(images)}).items()}


class Lite:
    """``lite(images) -> {"logits": array, "predictions": array}`` through the ``.tflite``'s signature, by LiteRT
    (``ai-edge-litert``) when installed, else TensorFlow's own interpreter. The signature resizes its input to each
    batch's size."""

    def __init__(self, path):
        if lite.installed():
            from ai_edge_litert.interpreter import Interpreter
        else:
            Interpreter = tf.lite.Interpreter
        with hidden_stderr():
            self.runner = Interpreter(model_path=str(path)).get_signature_runner(SIGNATURE)

    def __call__(self, images):
        with hidden_stderr():  # LiteRT announces its XNNPACK delegate on descriptor 2 when it plans a size
            return self.runner(**{INPUT: images})
