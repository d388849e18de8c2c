"""The naming rule applied to a Keras model's weights, for tf_keras's and Keras 3's models alike.

The rule itself lives in ``core/checkpoints.py`` (every half uses it): a legacy variable
``<model>/<scope path>/<variable>`` is the weight ``<variable'>`` of the layer ``<scope path with "/" ->
"__">``, ``weights`` / ``biases`` being Keras's ``kernel`` / ``bias``:

    jianshu_resnet_50/block1/unit_1/bottleneck/conv1/BatchNorm/gamma
        <-> layer "block1__unit_1__bottleneck__conv1__BatchNorm", weight "gamma"

What differs between the packages is read, not assumed: a weight's own name is the last part of ``name``
(tf_keras: ``conv1/kernel:0``; Keras 3: ``kernel``), and Keras 3 names ``DepthwiseConv2D``'s weight ``kernel``
where tf_keras says ``depthwise_kernel`` (slim's ``depthwise_weights``). Layers are walked with
``_flatten_layers``, which both packages have (Keras 3 models have no ``submodules``).
"""

import numpy as np

from core import checkpoints, models


def _leaf_layers(model):
    """The layers of ``model`` that hold weights themselves, nested ones included (subclassed models)."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if layer.weights and not any(True for _ in layer._flatten_layers(include_self=False))]


def _weight_name(layer, weight):
    name = weight.name.split("/")[-1].split(":")[0]
    return "depthwise_kernel" if name == "kernel" and type(layer).__name__ == "DepthwiseConv2D" else name


def leaf_weights(model):
    """``[(layer, weight name, weight)]`` for every weight of ``model``: the layers that hold weights themselves
    (nested ones included), the weight's name as the naming rule reads it (``kernel``, ``moving_mean``, ...)."""
    return [(layer, _weight_name(layer, weight), weight) for layer in _leaf_layers(model) for weight in layer.weights]


def weight_names(model):
    """``{legacy variable name: variable}`` for every weight of ``model``, by the rule.

    Every layer that holds weights must carry its full scope path as its name (subclassed models name their
    nested layers so: ``layer2__block_1__conv1``).
    """
    names = {}
    for layer, weight_name, weight in leaf_weights(model):
        name = checkpoints.legacy_name(model.name, layer.name, weight_name)
        if name in names:
            raise ValueError(f"two weights map to {name}")
        names[name] = weight
    return names


def assign(model, values, exclude_scopes=(), source="the checkpoint"):
    """Set the weights of ``model`` from ``values`` ``{legacy name: array}`` by name, except ``exclude_scopes``.

    Missing, unexpected or mis-shaped variables raise a UserError listing them. Returns the names assigned.
    """
    wanted = weight_names(model)
    chosen = checkpoints.select({n: [int(d) for d in w.shape] for n, w in wanted.items()}, values, model.name,
                                exclude_scopes, source)
    for name, value in chosen.items():
        weight = wanted[name]
        weight.assign(np.asarray(value, dtype=np.dtype(getattr(weight.dtype, "as_numpy_dtype", weight.dtype))))
    return sorted(chosen)


def assign_converted(model, values, model_name, source):
    """What a converted run's weights file holds (the halves' ``write_weights``): ``values`` by name into
    ``model`` (built with its auxiliary head), except the head's layers whose kernel follows the input size
    (``core.checkpoints.resized_aux``), which keep their initial values; returns those ``resized`` pairs."""
    shapes = {name: [int(d) for d in weight.shape] for name, weight in weight_names(model).items()}
    resized = checkpoints.resized_aux(shapes, values, model_name)
    assign(model, values, [scope for pair in resized for scope in pair], source=source)
    return resized


def initialise(model, run, init_from):
    """Fine-tuning (slim's ``assign_from_checkpoint_fn`` with ``checkpoint_exclude_scopes``): the weights of the
    run's model outside ``init_from["exclude_scopes"]`` from ``init_from["checkpoint"]`` (any checkpoint
    ``core.checkpoints.read`` takes), recorded in ``run.init_from``."""
    values, source = checkpoints.read(init_from["checkpoint"], models.scope(run.model))
    restored = assign(model, values, init_from["exclude_scopes"], source)
    run.init_from = {**init_from, "source": source, "restored": len(restored),
                     "initialised": len(weight_names(model)) - len(restored)}


def load(model, path):
    """Assign every weight of ``model`` by name from the TF1 checkpoint (Saver prefix), HDF5 weights file or run
    directory at ``path``."""
    values, source = checkpoints.read(str(path), model.name)
    return assign(model, values, source=source)
