"""The legacy half's model registry: name -> graph-mode builder (twin: modern/registry.py).

    logits, end_points = legacy.build("jianshu_resnet_50", images, num_classes=10, is_training=True)

``build`` adds the model's variables to the default graph (call it inside ``with graph.as_default():``) and
returns ``logits`` ``[batch, num_classes]`` and ``end_points`` (scope name -> tensor), tf_slim's convention.
Which models exist, at which sizes, is ``core.models``' table, shared with modern.

Sections, in the same order as the twin: the registry, building.
"""

from core import models
from core.models import default_input_size  # noqa: F401 -- the half's API, from the one table
from legacy.slim_compat import tf1_hashing

# --- the registry -----------------------------------------------------------------------------------------
# builders ``fn(name, images, num_classes, is_training, weight_decay, batch_norm_decay, **settings)``, the
# settings being the table's for that name
_REGISTRY = models.Registry("legacy")
register_model, list_models = _REGISTRY.register_model, _REGISTRY.list_models


# --- building ---------------------------------------------------------------------------------------------

def build(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None,
          dropout_keep_prob=None, **unknown):
    """Build model ``name`` on ``images`` (NHWC float32) in the default graph; return ``(logits, end_points)``.

    ``weight_decay=None`` means the model's own default (its row's in ``core.models``' table: 1e-4 for the
    ResNets), resolved here once for every builder; ``batch_norm_decay``, when
    given (0 included), replaces the decay of every BN layer's moving averages (the model's own otherwise);
    ``dropout_keep_prob``, when given, replaces the keep probability of every dropout (models with dropout only,
    whose builders take it as tf_slim's functions do: 1.0 switches dropout off in training mode).
    """
    fn, spec = _REGISTRY.lookup(name)
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))} for build(); known: images,"
                         " num_classes, is_training, weight_decay, batch_norm_decay, dropout_keep_prob")
    models.check_options(name, batch_norm_decay, dropout_keep_prob)
    weight_decay = spec.weight_decay if weight_decay is None else weight_decay  # 0 is a decay too
    keep = spec.dropout_keep_prob if dropout_keep_prob is None else dropout_keep_prob
    dropout = {} if keep is None else {"dropout_keep_prob": keep}
    with tf1_hashing():
        return fn(name, images, num_classes, is_training=is_training, weight_decay=weight_decay,
                  batch_norm_decay=batch_norm_decay, **dropout, **spec.settings)
