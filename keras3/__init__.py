"""keras3: the third half — Keras 3 (the ``keras`` package) on the TensorFlow and the JAX backend.

    import keras3
    model = keras3.build("jianshu_resnet_50", num_classes=10)    # a keras.Model returning logits

A half of ``core.halves.HALVES`` (docs/DESIGN.md §1 says what a half provides), on the backend ``KERAS_BACKEND``
names (the commands' ``--keras-backend``): every model of the table (``kerasnets``' nets with Keras 3's kit,
``keras3.kit``), the layers Keras 3 needs of its own to give slim's numbers on both backends (``keras3.layers``),
TF1 checkpoints read into a model by name (``keras3.naming``), research/slim's recipe TF1-exact
(``keras3.optimizers``), training with ``fit`` (``keras3.train``) and weights in and out by TF1 name
(``keras3.weights``). Imports nothing from ``tf_keras``, tf_slim, ``legacy/`` or ``modern/``; TensorFlow only
inside what runs on the TensorFlow backend, and for flowio's ``tf.data`` input, which feeds both backends.
"""

from keras3.registry import build, default_input_size, list_models

__all__ = ["build", "default_input_size", "list_models"]
