"""The naming rule applied to Keras layers: TF1 (name-based) checkpoints in and out of a modern model.

The rule itself lives in ``core/checkpoints.py`` (both halves use it): a legacy variable
``<model>/<scope path>/<variable>`` is the weight ``<variable'>`` of the layer ``<scope path with "/" ->
"__">``, ``weights`` / ``biases`` being Keras's ``kernel`` / ``bias``:

    jianshu_resnet_50/block1/unit_1/bottleneck/conv1/BatchNorm/gamma
        <-> layer "block1__unit_1__bottleneck__conv1__BatchNorm", weight "gamma"

Layers that hold no weights follow the same rule (``block1__unit_1__bottleneck`` is the unit's output, as
the legacy end point of that name). Weights are saved in Keras's HDF5 format (``x.h5``), which keys them
by layer name; tf_keras's ``x.weights.h5`` and ``.keras`` key them by class and order (``conv2d_17``), so
they load only into the very same topology and cannot be mapped to TF1 names.
"""

import numpy as np
import tf_keras as keras

from core import checkpoints
from core.checkpoints import SEP, layer_name, modern_name, scope_name

__all__ = ["SEP", "layer_name", "scope_name", "modern_name", "weight_names", "assign", "load"]


def _leaf_layers(model):
    """The layers of ``model`` that hold weights themselves, nested ones included (subclassed models)."""
    return [m for m in model.submodules if isinstance(m, keras.layers.Layer) and m.weights
            and not any(isinstance(s, keras.layers.Layer) for s in m.submodules)]


def weight_names(model):
    """``{legacy variable name: tf.Variable}`` for every weight of ``model``, by the rule.

    Every layer that holds weights must carry its full scope path as its name (subclassed models name their
    nested layers so: ``layer2__block_1__conv1``).
    """
    names = {}
    for layer in _leaf_layers(model):
        for weight in layer.weights:
            name = checkpoints.legacy_name(model.name, layer.name, weight.name.split("/")[-1])
            if name in names:
                raise ValueError(f"two weights map to {name}")
            names[name] = weight
    return names


def assign(model, values, exclude_scopes=(), source="the checkpoint"):
    """Set the weights of ``model`` from ``values`` ``{legacy name: array}`` by name, except ``exclude_scopes``.

    Missing, unexpected or mis-shaped variables raise a UserError listing them. Returns the names assigned.
    """
    wanted = weight_names(model)
    chosen = checkpoints.select({n: w.shape.as_list() for n, w in wanted.items()}, values, model.name,
                                exclude_scopes, source)
    for name, value in chosen.items():
        wanted[name].assign(np.asarray(value, dtype=wanted[name].dtype.as_numpy_dtype))
    return sorted(chosen)


def load(model, path):
    """Assign every weight of ``model`` by name from the TF1 checkpoint (Saver prefix), HDF5 weights file or run
    directory at ``path``."""
    values, source = checkpoints.read(str(path), model.name)
    return assign(model, values, source=source)
