"""tf_keras's layer kit: what the nets of ``kerasnets/`` are built from in the modern half.

``KIT`` is ``kerasnets.kit.Kit`` over ``tf_keras``, with the two layers that differ from Keras 3's
(``keras3/layers.py``, ``keras3/kit.py``):

* ``BatchNorm``: tf_keras's ``BatchNormalization`` with ``fused=True`` — TF1's fused kernel, the one slim's
  ``batch_norm`` runs: epsilon raised to 1.001e-5 and the moving variance updated with the unbiased batch
  variance (Keras's non-fused path uses epsilon as given and the biased variance);
* ``DepthFilling``: the article's zero-padding of channels by ``tf.concat`` of zeros, not ``tf.pad``: in TF 2.21
  with oneDNN, a graph with Conv2D(bias) -> Add(<- tf.pad) -> ReLU (the article's unit) segfaults in oneDNN's
  layout rewrite (docs/DESIGN.md §8).

Subclassed layers register as ``modern>Name``, the names ``last.keras`` files of earlier runs hold.
"""

import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

from kerasnets.kit import Kit


def batch_norm(**settings):
    """``BatchNormalization(fused=True, **settings)`` (Keras's defaults 0.99 / 1e-3 unless given)."""
    return layers.BatchNormalization(fused=True, **settings)


@keras.saving.register_keras_serializable(package="modern")
class DepthFilling(layers.Layer):
    """The article's ``depthFilling``: zero-pad the channels to ``depth``, (depth - in) / 2 on each side."""

    def __init__(self, depth, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, inputs):
        pad = (self.depth - inputs.shape[-1]) // 2
        zeros = tf.zeros(tf.concat([tf.shape(inputs)[:-1], [pad]], axis=0), dtype=inputs.dtype)
        return tf.concat([zeros, inputs, zeros], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.depth,)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


KIT = Kit("modern", keras, BatchNorm=batch_norm, DepthFilling=DepthFilling)
