"""keras3: the third half — Keras 3 (the ``keras`` package) on the TensorFlow and the JAX backend.

Being built (docs/DESIGN.md §1 says what a half provides). What is here: ``keras3.layers``, the layers Keras 3
needs of its own to give slim's numbers on both backends. Imports nothing from ``tf_keras``, tf_slim,
``legacy/`` or ``modern/``; TensorFlow only inside what runs on the TensorFlow backend.
"""
