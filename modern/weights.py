"""A modern run's weights in and out, and prediction with them (twin: legacy/weights.py): what the scripts need of
the half besides training (docs/DESIGN.md §1, the half protocol).

* ``model_from``: the run's model with values assigned by TF1 name (prediction's, export's and conversion's way
  in: Keras's HDF5 keyed by layer name, mapped by ``modern.naming``);
* ``variable_shapes``: what a checkpoint must hold for a run's model (``convert_checkpoint.py --list``);
* ``write_weights``: a converted run's ``best.h5``;
* ``Predictor``: logits of a run's best (else last) weights (evaluate.py, use_model.py).

Sections, in the same order as the twin: weights, prediction.
"""

import os

import numpy as np

import modern
from core import checkpoints, models
from core.errors import UserError
from core.run_dir import MODERN_BEST, MODERN_LAST
from modern import naming


# --- weights --------------------------------------------------------------------------------------------

def model_from(run, values, source, aux_logits=False):
    """The run's model (inference build, its image size) with every weight assigned by name from ``values``; the
    auxiliary head's too with ``aux_logits``, else its values are left aside."""
    model = modern.build(run.model, run.num_classes, input_shape=(run.image_size, run.image_size, 3),
                         aux_logits=aux_logits)
    naming.assign(model, values, () if aux_logits else models.aux_scopes(run.model), source=source)
    return model


def variable_shapes(run):
    """``{legacy variable name: shape}`` of the run's model: what a checkpoint must hold (convert_checkpoint's
    ``--list``)."""
    model = modern.build(run.model, run.num_classes, input_shape=(run.image_size, run.image_size, 3),
                         aux_logits=bool(models.aux_scopes(run.model)))
    return {name: weight.shape.as_list() for name, weight in naming.weight_names(model).items()}


def write_weights(run, values, source):
    """A converted run's checkpoint: ``values`` assigned by name into the model and saved as the run's best.h5.
    Returns ``(how many weights it holds, resized)``: an auxiliary head's weights are included (fine-tuning
    trains it), but ``resized``, its layers whose kernel follows the input size (``core.checkpoints.resized_aux``),
    keep their initial values."""
    model = modern.build(run.model, run.num_classes, input_shape=(run.image_size, run.image_size, 3),
                         aux_logits=bool(models.aux_scopes(run.model)))
    resized = naming.assign_converted(model, values, run.model, source)
    model.save_weights(run.path(MODERN_BEST))
    return len(naming.weight_names(model)), resized


def read_weights(run):
    """``{TF1 name: array}`` of the run's best.h5 (``core.checkpoints.read`` of a run)."""
    return checkpoints.read_run_h5(run, MODERN_BEST)


# --- prediction (evaluate.py, use_model.py) -------------------------------------------------------------

class Predictor:
    """``predictor(images float32 [N, S, S, 3]) -> logits [N, C]`` from a run's best (else last) weights."""

    def __init__(self, run):
        path = next((p for p in (run.path(MODERN_BEST), run.path(MODERN_LAST)) if os.path.exists(p)), None)
        if path is None:
            raise UserError(f"{run.folder}: no checkpoint ({MODERN_BEST} or {MODERN_LAST}); train it first")
        if path.endswith(".h5"):  # by name, every weight checked (an auxiliary head's left aside)
            self.model = model_from(run, *checkpoints.read(path, models.scope(run.model)))
        else:
            size = run.image_size
            self.model = modern.build(run.model, run.num_classes, input_shape=(size, size, 3))
            self.model.load_weights(path)

    def __call__(self, images):
        return np.asarray(self.model(images, training=False))
