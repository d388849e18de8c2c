"""Keras 3's layer kit: what the nets of ``kerasnets/`` are built from in the keras3 half (tf_keras's: modern/kit.py).

``KIT`` is ``kerasnets.kit.Kit`` over the ``keras`` package, on the backend the process runs (TensorFlow or
JAX), with ``keras3.layers``' ``BatchNorm`` (TF1's fused kernel's numbers; Keras 3 has no fused path) and
``DepthFilling`` (in ``keras.ops``). Subclassed layers register as ``keras3>Name``.
"""

import keras

from kerasnets.kit import Kit
from keras3.layers import BatchNorm, DepthFilling

KIT = Kit("keras3", keras, BatchNorm=BatchNorm, DepthFilling=DepthFilling)
