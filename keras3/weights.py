"""A keras3 run's weights in and out, and prediction with them (it mirrors modern/weights.py): what the scripts
need of the half besides training (docs/DESIGN.md §1, the half protocol).

Every file a keras3 run's weights travel in is keyed by TF1 name: ``best.h5`` is Keras's HDF5 layout by layer name
(``core.checkpoints.write_h5``; Keras 3 itself writes ``.weights.h5`` keyed by class and order only), so modern,
legacy and tf_slim checkpoints come in and go out by the naming rule, and a run trained on one backend predicts on
the other. Loading runs no code from a file: values are assigned into a model built from the registry.

Sections, in modern/weights.py's order: weights, prediction.
"""


import numpy as np

import keras3
from core import checkpoints, models
from core.run_dir import KERAS3_BEST
from keras3 import naming


# --- weights --------------------------------------------------------------------------------------------

def built(run, aux_logits=False):
    """The run's model (inference build, its image size), its auxiliary head with ``aux_logits``."""
    return keras3.build(run.model, run.num_classes, input_shape=(run.image_size, run.image_size, 3),
                        aux_logits=aux_logits)


def model_from(run, values, source, aux_logits=False):
    """The run's model with every weight assigned by name from ``values`` (an auxiliary head's left aside unless
    ``aux_logits``)."""
    model = built(run, aux_logits)
    naming.assign(model, values, () if aux_logits else models.aux_scopes(run.model), source=source)
    return model


def variable_shapes(run):
    """``{legacy variable name: shape}`` of the run's model, its auxiliary head included."""
    model = built(run, bool(models.aux_scopes(run.model)))
    return {name: [int(d) for d in weight.shape] for name, weight in naming.weight_names(model).items()}


def write_weights(run, values, source):
    """A converted run's best.h5 from ``values`` by name; returns ``(how many weights it holds, resized)``, the
    auxiliary head's layers whose kernel follows the input size keeping their initial values."""
    model = built(run, bool(models.aux_scopes(run.model)))
    resized = naming.assign_converted(model, values, run.model, source)
    written = {name: np.asarray(weight.numpy()) for name, weight in naming.weight_names(model).items()}
    checkpoints.write_h5(run.path(KERAS3_BEST), written)
    return len(written), resized


def read_weights(run):
    """``{TF1 name: array}`` of the run's best.h5 (``core.checkpoints.read`` of a run)."""
    return checkpoints.read_run_h5(run, KERAS3_BEST)


# --- prediction (evaluate.py, use_model.py) -------------------------------------------------------------

class Predictor:
    """``predictor(images float32 [N, S, S, 3]) -> logits [N, C]`` from a run's best weights, on the process's
    backend (whichever the run trained on)."""

    def __init__(self, run):
        self.model = model_from(run, read_weights(run), f"keras3 run {run.folder}")

    def __call__(self, images):
        return np.asarray(self.model(images, training=False))
