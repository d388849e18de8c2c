"""The Keras side of a port check: the porter's model (tf_keras, or Keras 3 on either backend), a TF1 checkpoint
mapped onto it by the naming rule (``core.checkpoints``: layer ``a__b`` holds TF1's ``<model>/a/b/weights`` as
``kernel``), its outputs at the layers that stand for slim's end points, and one training step of the recipe's
TF1-exact optimizer in the model's package (``modern.optimizers`` for tf_keras, ``keras3.optimizers`` for Keras 3).

Nothing here knows the TF1 graph: the values come from the checkpoint file ``portcheck/tf1.py`` wrote.
"""

import sys

import numpy as np
import tf_keras

from core import checkpoints
from core.errors import UserError
from kerasnets import naming

SEP = checkpoints.SEP


def package(model):
    """``(the Keras package that built model, its half's TF1-exact optimizers)``, or None for anything else."""
    if isinstance(model, tf_keras.Model):
        from modern import optimizers
        return tf_keras, optimizers
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        from keras3 import optimizers
        return keras, optimizers
    return None


def build(fn, num_classes):
    """The porter's model: ``fn(num_classes)`` must return a tf_keras or a Keras 3 model."""
    model = fn(num_classes)
    if package(model) is None:
        raise UserError(f"MODERN returned {type(model).__module__}.{type(model).__name__}, not a tf_keras or Keras 3"
                        " Model")
    return model


def numpy(value):
    """A TensorFlow tensor, a JAX array or a Keras 3 variable as a NumPy array."""
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def input_size(model):
    """The square input size ``model`` was built for, or None when it takes any."""
    shape = model.input_shape if not isinstance(model.input_shape, list) else model.input_shape[0]
    return shape[1] if shape[1] is not None and shape[1] == shape[2] else None


# --- the mapping -----------------------------------------------------------------------------------------

class Mapping:
    """TF1 names (after ``--rename``) against the model's weights by the naming rule: ``matched`` ``{TF1 name:
    weight}``, ``missing`` (TF1 variables no weight takes), ``unexpected`` (weights named off the rule or with no
    TF1 variable: ``{name: shape}``), ``misshaped`` ``{name: (TF1 shape, Keras shape)}``."""

    def __init__(self, model, shapes):
        names, off_rule = {}, {}
        for layer, weight_name, weight in naming.leaf_weights(model):
            if weight_name not in checkpoints.TO_SLIM:
                off_rule[f"{layer.name}/{weight_name}"] = list(weight.shape)
                continue
            name = checkpoints.legacy_name(model.name, layer.name, weight_name)
            if name in names:
                raise UserError(f"MODERN: two weights map to {name} (layer names must be unique scope paths)")
            names[name] = weight
        self.matched = {n: w for n, w in names.items() if n in shapes and list(w.shape) == list(shapes[n])}
        self.misshaped = {n: (list(shapes[n]), list(w.shape)) for n, w in names.items()
                          if n in shapes and n not in self.matched}
        self.missing = sorted(n for n in shapes if n not in names)
        self.unexpected = {**{n: list(w.shape) for n, w in names.items() if n not in shapes}, **off_rule}

    @property
    def complete(self):
        return not (self.missing or self.unexpected or self.misshaped)

    def assign(self, values):
        for name, weight in self.matched.items():
            weight.assign(values[name])


# --- outputs --------------------------------------------------------------------------------------------

def end_point_layer_name(model, end_point):
    """The layer name slim's ``end_point`` has by the rule, the model's own scope left off."""
    return checkpoints.layer_name(end_point[len(model.name) + 1:] if end_point.startswith(model.name + "/")
                                  else end_point)


def end_point_layers(model, end_point):
    """The layers named by the rule for slim's ``end_point`` ``S``: ``S`` and ``S__...`` (a conv named ``S``, its BN
    and activation), in the model's order."""
    name = end_point_layer_name(model, end_point)
    return [layer for layer in model.layers if layer.name == name or layer.name.startswith(name + SEP)]


def layer_for(model, end_point):
    """The layer standing for slim's ``end_point``: the last of ``end_point_layers``, or None."""
    found = end_point_layers(model, end_point)
    return found[-1] if found else None


def functional(model):
    """Whether ``model`` is a graph of layers whose outputs can be read (a subclassed model's cannot)."""
    return getattr(model, "outputs", None) is not None


class Probe:
    """The model's logits and the outputs of ``layers`` (inference mode; none for a subclassed model) in one
    call."""

    def __init__(self, model, layers):
        self.model, self.layers = model, list(layers)
        self.probe = model
        if functional(model):
            keras, _ = package(model)
            inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # called with one tensor
            self.probe = keras.Model(inputs, model.outputs[:1] + [layer.output for layer in self.layers])

    def __call__(self, images):
        out = self.probe(images, training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        logits = numpy(out[0]).reshape(len(images), -1)
        return logits, {layer.name: numpy(value) for layer, value in zip(self.layers, out[1:])}


# --- one training step ----------------------------------------------------------------------------------

def penalties(model):
    """``{TF1 name of a weight: its regularization penalty}`` for every weight with a regularizer."""
    out = {}
    for layer, weight_name, weight in naming.leaf_weights(model):
        regularizer = getattr(layer, f"{weight_name}_regularizer", None)
        if regularizer is not None and weight_name in checkpoints.TO_SLIM:
            out[checkpoints.legacy_name(model.name, layer.name, weight_name)] = float(numpy(regularizer(weight)))
    return out


def training_step(model, mapping, values, images, labels, hyper):
    """One ``train_on_batch`` step of the half's TF1-exact optimizer (fixed rate) on softmax cross-entropy plus the
    model's losses, in training mode (BN's moving statistics updated), on any backend: ``{"loss",
    "regularization", "regularizers", "values": {TF1 name: array after the step}}``."""
    keras, optimizers = package(model)
    mapping.assign(values)
    each = penalties(model)
    model.compile(optimizer=optimizers.optimizer(hyper, 1),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    loss = model.train_on_batch(images, labels, return_dict=True)["loss"]
    return {"loss": float(numpy(loss)), "regularization": float(sum(each.values())), "regularizers": each,
            "values": {name: numpy(weight) for name, weight in mapping.matched.items()}}
