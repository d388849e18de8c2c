"""The legacy half's model registry: name -> graph-mode builder and default input size (twin: modern/registry.py).

    logits, end_points = legacy.build("jianshu_resnet_50", images, num_classes=10, is_training=True)

``build`` adds the model's variables to the default graph (call it inside ``with graph.as_default():``) and
returns ``logits`` ``[batch, num_classes]`` and ``end_points`` (scope name -> tensor), tf_slim's
convention. Models register themselves with ``@register_model(name, input_size, article)``; a name registered twice
is a bug and raises.
"""

from flowio.registry import Registry
from legacy.slim_compat import tf1_hashing

_REGISTRY = Registry()  # builders ``fn(images, num_classes, is_training, weight_decay, batch_norm_decay)``
register_model = _REGISTRY.register_model
list_models = _REGISTRY.list_models
default_input_size = _REGISTRY.default_input_size
article = _REGISTRY.article


def build(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None, **unknown):
    """Build model ``name`` on ``images`` (NHWC float32) in the default graph; return ``(logits, end_points)``.

    ``weight_decay=None`` means the model's own default (1e-4 for the ResNets); ``batch_norm_decay``, when
    given, replaces the decay of every BN layer's moving averages (the model's own otherwise).
    """
    fn, _ = _REGISTRY.lookup(name)
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} for build(); known: images,"
                         " num_classes, is_training, weight_decay, batch_norm_decay")
    with tf1_hashing():
        return fn(images, num_classes, is_training=is_training, weight_decay=weight_decay,
                  batch_norm_decay=batch_norm_decay)
