"""Bad inputs for scripts/check_port.py (tests/test_port_check.py), imported by the command from the current
folder as a porter's own modules are."""

import tensorflow as tf
import tf_keras as keras

from portcheck import examples


def no_is_training(images, num_classes):
    """A slim function without slim's is_training."""
    return images


def logits_only(images, num_classes, is_training):
    """portcheck.examples' small net returning its logits alone: its end points are in its outputs collection."""
    return examples.small_net(images, num_classes, is_training)[0]


def small_keras_as_small(num_classes):
    """The correct port of the small net, its model named ``small`` (its TF1 scope is ``small_net``)."""
    model = examples.small_keras(num_classes)
    return keras.Model(model.inputs, model.outputs, name="small")


class TwoKernels(keras.layers.Layer):
    """A port's own layer holding two weights named ``kernel``: both map to ``<model>/conv1/weights``."""

    def build(self, input_shape):
        self.first = self.add_weight(name="kernel", shape=(3, 3, input_shape[-1], 4))
        self.second = self.add_weight(name="kernel", shape=(3, 3, input_shape[-1], 4))

    def call(self, inputs):
        return tf.nn.conv2d(inputs, self.first + self.second, 1, "SAME")


def two_kernels(num_classes):
    images = keras.Input((None, None, 3))
    x = TwoKernels(name="conv1")(images)
    logits = keras.layers.Dense(num_classes, name="logits")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    return keras.Model(images, logits, name="small_net")
