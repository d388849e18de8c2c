"""Ports to point ``scripts/check_port.py`` at: this project's own (legacy's slim nets against modern's tf_keras
ones and keras3's, with slim's signature), and a small slim net with a correct port (tf_keras and Keras 3) and
seven broken ones, each the correct port with one mistake porters make (docs/MIGRATION.md, "Checking your own
port"):

    python scripts/check_port.py portcheck.examples:resnet_v1_50 portcheck.examples:resnet_v1_50_keras
    python scripts/check_port.py portcheck.examples:small_net portcheck.examples:small_keras_epsilon --image-size 32

The small net is what a porter typically has: ``resnet_arg_scope``'s BN (decay 0.997, epsilon 1e-5, scale) and
``l2_regularizer(wd)`` on every convolution, a stride-2 ``conv2d_same`` (padded explicitly, then VALID), end points
from an outputs collection.
"""

import tensorflow as tf2
import tf_keras

import legacy
import modern
from legacy.slim_compat import resnet_utils, slim, tf

SHAPE = (32, 32, 3)  # the Keras models of this project's nets are built at 32x32 here
WEIGHT_DECAY = 1e-4
BN_DECAY, BN_EPSILON = 0.997, 1e-5


# --- this project's nets ------------------------------------------------------------------------------------

def resnet_v1_50(images, num_classes, is_training):
    """tf_slim's resnet_v1_50 (legacy's registry), with slim's signature."""
    return legacy.build("resnet_v1_50", images, num_classes, is_training=is_training)


def resnet_v1_50_keras(num_classes):
    return modern.build("resnet_v1_50", num_classes, input_shape=SHAPE)


def jianshu_resnet_50(images, num_classes, is_training):
    """The article's ResNet (channel zero-padding shortcuts), legacy's."""
    return legacy.build("jianshu_resnet_50", images, num_classes, is_training=is_training)


def jianshu_resnet_50_keras(num_classes):
    return modern.build("jianshu_resnet_50", num_classes, input_shape=SHAPE)


def jianshu_resnet_50_keras3(num_classes):
    """The keras3 half's (Keras 3, on the backend ``--keras-backend`` chose)."""
    import keras3
    return keras3.build("jianshu_resnet_50", num_classes, input_shape=SHAPE)


# --- a small slim net and its ports ---------------------------------------------------------------------------

def small_arg_scope(weight_decay=WEIGHT_DECAY):
    """``small_net``'s arg scope: ``l2_regularizer`` and BN on every convolution, ``resnet_arg_scope``'s BN."""
    with slim.arg_scope([slim.conv2d], weights_regularizer=slim.l2_regularizer(weight_decay),
                        normalizer_fn=slim.batch_norm), \
            slim.arg_scope([slim.batch_norm], decay=BN_DECAY, epsilon=BN_EPSILON, scale=True) as scope:
        return scope


def small_net_unscoped(images, num_classes, is_training):
    """conv1 (3x3, 16) -> conv2 (3x3, 32, stride 2, conv2d_same) -> conv3 (3x3, 32) -> mean -> logits (1x1), built
    under the caller's arg scope (``--arg-scope portcheck.examples:small_arg_scope``)."""
    with tf.variable_scope("small_net", values=[images]) as sc:
        collection = sc.original_name_scope + "_end_points"
        with slim.arg_scope([slim.conv2d], outputs_collections=collection), \
                slim.arg_scope([slim.batch_norm], is_training=is_training):
            net = slim.conv2d(images, 16, [3, 3], scope="conv1")
            net = resnet_utils.conv2d_same(net, 32, 3, stride=2, scope="conv2")
            net = slim.conv2d(net, 32, [3, 3], scope="conv3")
            net = tf.reduce_mean(net, [1, 2], keepdims=True, name="pool")
            net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="logits")
        end_points = slim.utils.convert_collection_to_dict(collection)
        return tf.squeeze(net, [1, 2], name="SpatialSqueeze"), end_points


def small_net(images, num_classes, is_training):
    """``small_net_unscoped`` under its arg scope, as slim's nets are called."""
    with slim.arg_scope(small_arg_scope()):
        return small_net_unscoped(images, num_classes, is_training)


class SwappedConv2D(tf_keras.layers.Conv2D):
    """A port's own convolution that reads its kernel with the spatial axes swapped (as when converting a kernel
    from another layout with the wrong permutation)."""

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, tf2.transpose(kernel, [1, 0, 2, 3]))


def small_port(num_classes, epsilon=BN_EPSILON, momentum=BN_DECAY, stride_padding="explicit", conv3=None,
               conv3_relu=True, l2=WEIGHT_DECAY / 2, conv3_name="conv3", keras=tf_keras, batch_norm=None):
    """The port of ``small_net`` in ``keras`` (tf_keras, or Keras 3: the same code, with ``batch_norm`` the BN
    class); each other argument off its default is one mistake of the broken ports."""
    regularizer = keras.regularizers.L2(l2)  # slim's l2_regularizer(wd) is wd * sum(w**2) / 2
    batch_norm = batch_norm or keras.layers.BatchNormalization

    def conv_bn(x, filters, name, strides=1, padding="same", conv=None, relu=True):
        x = (conv or keras.layers.Conv2D)(filters, 3, strides, padding=padding, use_bias=False,
                                          kernel_regularizer=regularizer, name=name)(x)
        x = batch_norm(momentum=momentum, epsilon=epsilon, name=f"{name}__BatchNorm")(x)
        return keras.layers.ReLU(name=f"{name}__Relu")(x) if relu else x

    images = keras.Input((None, None, 3), name="images")
    x = conv_bn(images, 16, "conv1")
    if stride_padding == "explicit":  # slim's conv2d_same: kernel 3, stride 2 pads 1 on each side, then VALID
        x = keras.layers.ZeroPadding2D(1, name="conv2__pad")(x)
        x = conv_bn(x, 32, "conv2", strides=2, padding="valid")
    else:
        x = conv_bn(x, 32, "conv2", strides=2, padding=stride_padding)
    x = conv_bn(x, 32, conv3_name, conv=conv3, relu=conv3_relu)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = keras.layers.Conv2D(num_classes, 1, kernel_regularizer=regularizer, name="logits")(x)
    logits = keras.layers.Reshape((num_classes,), name="SpatialSqueeze")(x)
    return keras.Model(images, logits, name="small_net")


def small_keras(num_classes):
    """The correct port."""
    return small_port(num_classes)


def small_keras3(num_classes):
    """The correct port in Keras 3 (on the backend ``KERAS_BACKEND`` or ``--keras-backend`` chose), with keras3's
    ``BatchNorm``: Keras 3's own has no fused path and moves the moving variance by the biased batch variance."""
    import keras
    from keras3.layers import BatchNorm
    return small_port(num_classes, keras=keras, batch_norm=BatchNorm)


def small_keras_epsilon(num_classes):
    """Keras's default BN epsilon (1e-3) where the arg scope sets 1e-5."""
    return small_port(num_classes, epsilon=1e-3)


def small_keras_decay(num_classes):
    """Keras's default BN momentum (0.99) where the arg scope sets a decay of 0.997."""
    return small_port(num_classes, momentum=0.99)


def small_keras_same_padding(num_classes):
    """``padding="same"`` where slim pads explicitly before the stride-2 convolution."""
    return small_port(num_classes, stride_padding="same")


def small_keras_swapped_kernel(num_classes):
    """conv3's kernel read with its spatial axes swapped."""
    return small_port(num_classes, conv3=SwappedConv2D)


def small_keras_no_relu(num_classes):
    """conv3's ReLU dropped."""
    return small_port(num_classes, conv3_relu=False)


def small_keras_weight_decay(num_classes):
    """``L2(wd)`` for slim's ``l2_regularizer(wd)``: twice its penalty."""
    return small_port(num_classes, l2=WEIGHT_DECAY)


def small_keras_misnamed(num_classes):
    """conv3's layers named off the rule (``conv_3``)."""
    return small_port(num_classes, conv3_name="conv_3")
