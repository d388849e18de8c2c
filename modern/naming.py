"""The one naming rule between the halves, and loading a TF1 (name-based) checkpoint into a modern model.

A legacy variable ``<model>/<scope path>/<variable>`` is the weight ``<variable'>`` of the modern layer
``<scope path with "/" -> "__">``, where ``<variable'>`` renames slim's ``weights`` / ``biases`` to Keras's
``kernel`` / ``bias`` (BatchNorm's ``gamma``, ``beta``, ``moving_mean``, ``moving_variance`` are the same):

    jianshu_resnet_50/block1/unit_1/bottleneck/conv1/BatchNorm/gamma
        <-> layer "block1__unit_1__bottleneck__conv1__BatchNorm", weight "gamma"

So checkpoints map by name, never by order. Layers that hold no weights follow the same rule
(``block1__unit_1__bottleneck`` is the unit's output, as the legacy end point of that name).
"""

import numpy as np
import tensorflow as tf

from flowio.errors import UserError

SEP = "__"
_TO_KERAS = {"weights": "kernel", "biases": "bias", "gamma": "gamma", "beta": "beta",
             "moving_mean": "moving_mean", "moving_variance": "moving_variance"}
_TO_SLIM = {v: k for k, v in _TO_KERAS.items()}
# Variables a TF1 training run saves beside the model's: the step and the optimizer's slots.
_NOT_MODEL = ("global_step",)
_SLOT_SUFFIXES = ("/Momentum", "/ExponentialMovingAverage")


def layer_name(scope):
    """``block1/unit_1/bottleneck/conv1`` -> ``block1__unit_1__bottleneck__conv1``."""
    return scope.replace("/", SEP)


def scope_name(layer):
    return layer.replace(SEP, "/")


def weight_names(model):
    """``{legacy variable name: tf.Variable}`` for every weight of ``model``, by the rule."""
    names = {}
    for layer in model.layers:
        for weight in layer.weights:
            short = weight.name.split("/")[-1].split(":")[0]
            name = f"{model.name}/{scope_name(layer.name)}/{_TO_SLIM[short]}"
            if name in names:
                raise ValueError(f"two weights map to {name}")
            names[name] = weight
    return names


def modern_name(variable_name):
    """A legacy variable name (with or without ``:0``) -> ``(model name, layer name, weight name)``."""
    parts = variable_name.split(":")[0].split("/")
    return parts[0], layer_name("/".join(parts[1:-1])), _TO_KERAS[parts[-1]]


def model_variables(names, model_name):
    """The names among ``names`` that are model weights of ``model_name`` (no step, no optimizer slots)."""
    return [n for n in names if n.startswith(model_name + "/") and n not in _NOT_MODEL
            and not n.endswith(_SLOT_SUFFIXES)]


def load_legacy_checkpoint(model, path):
    """Assign every weight of ``model`` from the TF1 name-based checkpoint at ``path`` (a Saver prefix).

    Missing, extra or mis-shaped variables raise a UserError that lists them.
    """
    reader = tf.train.load_checkpoint(path)
    shapes = reader.get_variable_to_shape_map()
    wanted = weight_names(model)
    missing = sorted(set(wanted) - set(shapes))
    extra = sorted(set(model_variables(shapes, model.name)) - set(wanted))
    misshaped = sorted(f"{n} {shapes[n]} vs {wanted[n].shape.as_list()}" for n in set(wanted) & set(shapes)
                       if list(shapes[n]) != wanted[n].shape.as_list())
    if missing or extra or misshaped:
        problems = [f"{label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''} ({len(items)})"
                    for label, items in (("missing", missing), ("unexpected", extra), ("wrong shape", misshaped))
                    if items]
        raise UserError(f"{path} does not match {model.name}: " + "; ".join(problems))
    for name, weight in wanted.items():
        weight.assign(np.asarray(reader.get_tensor(name), dtype=weight.dtype.as_numpy_dtype))
