"""The Keras nets' registry: model name -> builder written against ``kerasnets.kit``.

A family module registers one builder over the rows of ``core.models``' table that it builds,
``@register_model(*NETS)``; each Keras half builds from here with its own kit (``modern.build`` with tf_keras's,
``keras3.build`` with Keras 3's), resolving the table's settings in its ``build``.
"""

from core import models
from core.checkpoints import SEP, layer_name
from kerasnets.kit import using

# --- the registry -----------------------------------------------------------------------------------------
# builders ``fn(name, num_classes, input_shape, weight_decay, **settings) -> Keras model`` (the kit's), the
# settings being the table's for that name
_REGISTRY = models.Registry("Keras")
register_model, list_models, lookup = _REGISTRY.register_model, _REGISTRY.list_models, _REGISTRY.lookup


# --- building ---------------------------------------------------------------------------------------------

def build(kit, name, num_classes, input_shape=None, weight_decay=None, batch_norm_decay=None, precision="float32",
          dropout_keep_prob=None, aux_logits=False, **unknown):
    """Build model ``name`` with ``kit``'s layers; ``input_shape=None`` means ``(S, S, 3)`` at its default size S.

    ``weight_decay=None`` means the model's own default (its row's in ``core.models``' table, resolved here once
    for every builder: 1e-4 for the ResNets, in slim's convention, the coefficient of half the sum of squares);
    ``batch_norm_decay``, when given (0 included), replaces the momentum of every BN layer's moving averages
    (slim's "decay" is Keras's "momentum"). ``precision`` is a
    Keras dtype policy (``mixed_bfloat16``, ``mixed_float16``) the layers are built under, except the
    head (``logits``, or the table's ``head``), which every builder keeps in float32; the global policy is left
    as it was. ``dropout_keep_prob``, when given, sets every ``Dropout`` layer's rate to ``1 - keep`` (models
    with dropout only; 1.0 switches dropout off in training mode, as in legacy's ``build``). ``aux_logits``
    (models with an auxiliary head: inception_v3) makes the model return ``[logits, aux_logits]``, what training
    needs; the default model has no auxiliary layers at all.
    """
    fn, spec = lookup(name)
    keras = kit.keras
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} for build(); known: num_classes,"
                         " input_shape, weight_decay, batch_norm_decay, precision, dropout_keep_prob, aux_logits")
    models.check_options(name, batch_norm_decay, dropout_keep_prob)
    if aux_logits and spec.aux_head is None:
        raise ValueError(f"{name} has no auxiliary head (aux_logits=True is inception_v3's)")
    aux = {"aux_logits": True} if aux_logits else {}
    keep = spec.dropout_keep_prob if dropout_keep_prob is None else dropout_keep_prob
    dropout = {} if keep is None else {"dropout_keep_prob": keep}
    size = spec.input_size
    weight_decay = spec.weight_decay if weight_decay is None else weight_decay  # 0 is a decay too
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        with using(kit):
            model = fn(name, num_classes, input_shape=tuple(input_shape or (size, size, 3)), weight_decay=weight_decay,
                       **dropout, **aux, **spec.settings)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    check_head(model, spec)
    for layer in model._flatten_layers(include_self=False):  # nested layers of subclassed models too
        if batch_norm_decay is not None and isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = batch_norm_decay
    return model


def check_head(model, spec):
    """A ValueError unless ``model`` has the table's head (layers ``head``, ``head__...``) with weights, computing
    in float32 under any precision."""
    head = layer_name(spec.head)
    heads = [layer for layer in model._flatten_layers(include_self=False)
             if layer.name == head or layer.name.startswith(head + SEP)]
    if not any(layer.weights for layer in heads) or any(layer.compute_dtype != "float32" for layer in heads):
        raise ValueError(f"{spec.name}: needs a head (layers {head!r}, {head + SEP}...) with weights computing in"
                         f" float32, found {[(layer.name, layer.compute_dtype) for layer in heads]}")
