"""modern: the TF2 half — Keras 2.x through ``tf_keras``, ``tf.data`` and ``model.fit`` (twin: ``legacy/``).

    import modern
    model = modern.build("jianshu_resnet_50", num_classes=10)    # a tf_keras.Model returning logits

Imports nothing from tf_slim, ``legacy/`` or ``tf.compat.v1``; always ``tf_keras`` (Keras 2), never the
Keras 3 package. Its models are ``kerasnets``' nets built with tf_keras's kit (``modern.kit``); layer names
follow ``modern.naming``'s rule, so TF1 checkpoints load by name.
"""

from modern.registry import build, default_input_size, list_models, register_model

__all__ = ["build", "default_input_size", "list_models", "register_model"]
