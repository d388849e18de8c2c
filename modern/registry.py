"""The modern half's model registry: name -> tf_keras builder and default input size (twin: legacy/registry.py).

    model = modern.build("jianshu_resnet_50", num_classes=10)   # a tf_keras.Model that returns logits

Models register themselves with ``@register_model(name, input_size, article)``; a name registered twice is a bug
and raises. The names and sizes are the legacy registry's (a test checks both tables agree).
"""

import tf_keras as keras

from flowio.registry import Registry

_REGISTRY = Registry()  # builders ``fn(num_classes, input_shape, weight_decay) -> tf_keras.Model``
register_model = _REGISTRY.register_model
list_models = _REGISTRY.list_models
default_input_size = _REGISTRY.default_input_size
article = _REGISTRY.article


def build(name, num_classes, input_shape=None, weight_decay=None, batch_norm_decay=None, precision="float32",
          **unknown):
    """Build model ``name``; ``input_shape=None`` means ``(S, S, 3)`` at its default size S.

    ``weight_decay=None`` means the model's own default (1e-4 for the ResNets, in slim's convention:
    the coefficient of half the sum of squares); ``batch_norm_decay``, when given, replaces the momentum
    of every BN layer's moving averages (slim's "decay" is Keras's "momentum"). ``precision`` is a Keras
    dtype policy (``mixed_bfloat16``, ``mixed_float16``) the layers are built under, except the ``logits``
    head, which every builder keeps in float32; the global policy is left as it was.
    """
    fn, size = _REGISTRY.lookup(name)
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} for build(); known: num_classes,"
                         " input_shape, weight_decay, batch_norm_decay, precision")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = fn(num_classes, input_shape=tuple(input_shape or (size, size, 3)), weight_decay=weight_decay)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    heads = [layer.compute_dtype for layer in model.submodules
             if isinstance(layer, keras.layers.Layer) and layer.name == "logits"]
    if heads != ["float32"]:
        raise ValueError(f"{name}: needs one head layer named 'logits' computing in float32, found {heads}")
    if batch_norm_decay is not None:
        for layer in model.submodules:  # nested layers of subclassed models too
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = batch_norm_decay
    return model
