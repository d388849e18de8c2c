"""modern: the TF2 half — Keras 2.x through ``tf_keras``, ``tf.data`` and ``model.fit`` (twin: ``legacy/``).

Models, training and evaluation arrive with the ResNet and training issues; the input pipeline both halves
share is ``flowio.reader.dataset``.
"""
