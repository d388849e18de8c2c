"""The modern half's models: ``kerasnets``' builders built with tf_keras's kit (twin: legacy/registry.py).

    model = modern.build("jianshu_resnet_50", num_classes=10)   # a tf_keras.Model that returns logits

The nets are written once in ``kerasnets/`` (each family module registers its builder there over the rows of
``core.models``' table that it builds); ``build`` runs one with ``modern.kit.KIT`` in use.

Sections, in the same order as the twin: the registry, building.
"""

import kerasnets
from core.models import default_input_size  # noqa: F401 -- the half's API, from the one table
from modern.kit import KIT

# --- the registry -----------------------------------------------------------------------------------------
# kerasnets' builders ``fn(name, num_classes, input_shape, weight_decay, **settings) -> Keras model``, the settings
# being the table's for that name
register_model, list_models = kerasnets.register_model, kerasnets.list_models


# --- building ---------------------------------------------------------------------------------------------

def build(name, num_classes, input_shape=None, weight_decay=None, batch_norm_decay=None, precision="float32",
          dropout_keep_prob=None, aux_logits=False, **unknown):
    """Build model ``name`` as a tf_keras model; ``kerasnets.registry.build`` says what each argument means (the
    keras3 half's ``build`` takes the same)."""
    return kerasnets.build(KIT, name, num_classes, input_shape=input_shape, weight_decay=weight_decay,
                           batch_norm_decay=batch_norm_decay, precision=precision,
                           dropout_keep_prob=dropout_keep_prob, aux_logits=aux_logits, **unknown)
