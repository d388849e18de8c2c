"""The layers Keras 3 needs of its own to give slim's numbers, on the TensorFlow and the JAX backend.

modern/ gets both from tf_keras; Keras 3 has neither (docs/DESIGN.md §12):

* ``BatchNorm``: slim's ``batch_norm`` as TF1 runs it, through ``tf.nn.fused_batch_norm``. Keras 3's
  ``BatchNormalization`` refuses ``fused=``, uses epsilon as given and updates the moving variance with the
  batch's *biased* variance. TF1's fused kernel normalises with the biased variance too, but raises epsilon to
  at least 1.001e-5 and updates the moving variance with the *unbiased* one, ``var * n / (n - 1)`` for the
  ``n = N * H * W`` values of a channel: at batch 16 on a 1x1 map and decay 0, Keras 3's moving variance is
  15/16 of slim's. ``BatchNorm`` does what the fused kernel does: on TensorFlow by calling it (also the faster
  kernel), on JAX with ``keras.ops``. Inference, and the weights (``gamma``, ``beta``, ``moving_mean``,
  ``moving_variance``), are Keras 3's own.
* ``DepthFilling``: the article's zero-padding of channels, in ``keras.ops`` (modern's uses ``tf.zeros`` and
  ``tf.shape``, which a JAX array refuses). Built by concatenating zeros, not by ``ops.pad``: on TensorFlow with
  oneDNN, ``tf.pad`` in the article's unit crashes (modern/kit.py says how).
"""

import keras
from keras import ops

FUSED_MIN_EPSILON = 1.001e-5  # tf.nn.fused_batch_norm raises a smaller epsilon to this (TF1's and tf_keras's)


@keras.saving.register_keras_serializable(package="keras3")
class BatchNorm(keras.layers.BatchNormalization):
    """slim's ``batch_norm`` (fused, as TF1 runs it): Keras 3's layer with TF1's epsilon floor and moving-variance
    update. ``momentum`` is slim's ``decay``; the defaults are Keras's (0.99, 1e-3), as tf_keras's
    ``BatchNormalization(fused=True)`` it stands for in the layer kit."""

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(momentum=momentum, epsilon=max(epsilon, FUSED_MIN_EPSILON), **kwargs)
        if self.axis != -1 or self.renorm or self.synchronized:
            raise ValueError("BatchNorm is slim's: channels last, no renorm, not synchronized")

    def call(self, inputs, training=None, mask=None):
        if mask is not None or not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        if keras.backend.backend() == "tensorflow":
            outputs, mean, unbiased = self._fused(inputs)
        else:
            outputs, mean, unbiased = self._with_ops(inputs)
        decay = self.momentum
        self.moving_mean.assign(self.moving_mean * decay + mean * (1.0 - decay))
        self.moving_variance.assign(self.moving_variance * decay + unbiased * (1.0 - decay))
        return ops.cast(outputs, self.compute_dtype)

    def _parameters(self, channels):
        gamma = ops.cast(self.gamma, "float32") if self.scale else ops.ones((channels,), "float32")
        beta = ops.cast(self.beta, "float32") if self.center else ops.zeros((channels,), "float32")
        return gamma, beta

    def _fused(self, inputs):
        """TensorFlow's fused kernel (slim's, ``tf.compat.v1.nn.fused_batch_norm``'s): it returns the unbiased
        variance beside the output."""
        import tensorflow as tf
        gamma, beta = self._parameters(inputs.shape[-1])
        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16, tf.float16) else tf.cast(inputs, tf.float32)
        rank = len(inputs.shape)
        if rank != 4:  # the kernel takes NHWC: a dense input [N, C] is N images of 1x1
            x = tf.reshape(x, [-1, 1, 1, inputs.shape[-1]])
        empty = tf.constant([], tf.float32)  # no running averages passed in: the layer keeps its own
        outputs, mean, unbiased, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        return (outputs if rank == 4 else tf.reshape(outputs, tf.shape(inputs))), mean, unbiased

    def _with_ops(self, inputs):
        """What the fused kernel computes, in ``keras.ops``: normalise with the biased variance, return the
        unbiased one for the moving average (``n / (n - 1)``, 1 when a channel has one value)."""
        x = ops.cast(inputs, "float32")
        gamma, beta = self._parameters(inputs.shape[-1])
        mean, variance = ops.moments(x, axes=self._reduction_axes)
        n = ops.cast(ops.size(x) // ops.shape(x)[-1], "float32")
        unbiased = variance * ops.where(n > 1, n / ops.maximum(n - 1, 1), 1.0)
        outputs = ops.batch_normalization(x, mean, variance, axis=-1, offset=beta, scale=gamma,
                                          epsilon=self.epsilon)
        return outputs, mean, unbiased


@keras.saving.register_keras_serializable(package="keras3")
class DepthFilling(keras.layers.Layer):
    """The article's ``depthFilling``: zero-pad the channels to ``depth``, (depth - in) / 2 on each side."""

    def __init__(self, depth, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, inputs):
        pad = (self.depth - inputs.shape[-1]) // 2
        zeros = ops.repeat(ops.zeros_like(inputs[..., :1]), pad, axis=-1)
        return ops.concatenate([zeros, inputs, zeros], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.depth,)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}
