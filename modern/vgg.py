"""research/slim's VGG the TF2 way: tf_keras functional models that load slim's checkpoints (twin: legacy/vgg.py).

Where tf_slim's ``nets/vgg.py`` (under ``vgg_arg_scope``) and Keras differ, and what is done here:

* names: ``slim.repeat(net, 2, conv2d, 64, [3, 3], scope="conv1")`` makes the scopes ``conv1/conv1_1`` and
  ``conv1/conv1_2``; the layers are named ``conv1__conv1_1``, ``conv1__conv1_2`` by the naming rule, and the
  head is ``fc8`` (slim's VGG has no ``logits`` scope), its squeeze ``fc8__squeezed``;
* fully-connected layers: slim writes them as convolutions — ``fc6`` a 7x7 VALID one over pool5's 7x7x512,
  ``fc7`` and ``fc8`` 1x1 — so their kernels are ``[7, 7, 512, 4096]`` and ``[1, 1, 4096, C]``, not a ``Dense``
  layer's ``[25088, 4096]``: ``Conv2D`` here, and the same input range (224 to 255: pool5 must be 7x7);
* ``spatial_squeeze=True``: ``tf.squeeze(net, [1, 2])`` of the ``[B, 1, 1, C]`` logits is a ``Reshape``;
* padding: slim's arg scope makes every convolution SAME (Keras's default is VALID) except ``fc6``; slim's
  ``max_pool2d`` is 2x2, stride 2, VALID, as Keras's ``MaxPooling2D(2)``;
* initialisation: slim.conv2d's xavier-uniform kernels are Keras's ``glorot_uniform``; zero biases in both;
* regularization: ``l2_regularizer(5e-4)`` on every kernel is ``L2(2.5e-4)`` (slim halves the sum of
  squares); biases are not regularized in either;
* dropout: slim's ``dropout(keep_prob=0.5, is_training)`` after ``fc6`` and ``fc7`` is ``Dropout(0.5)``, active
  only when Keras calls the model with ``training=True``;
* no batch norm: ``--bn-decay`` is refused (the table's ``bn_decay``).

Sections, in the same order as the twin: the table, layer settings, trunk, registered builders.
"""

import tf_keras as keras
from tf_keras import layers

from modern.naming import SEP
from modern.registry import register_model

# --- the table ----------------------------------------------------------------------------------------
# convolutions per block (tf_slim's vgg_a, vgg_16, vgg_19), of FILTERS[block] filters each
REPEATS = {"vgg_a": (1, 1, 2, 2, 2), "vgg_16": (2, 2, 3, 3, 3), "vgg_19": (2, 2, 4, 4, 4)}
FILTERS = (64, 128, 256, 512, 512)
DEFAULT_WEIGHT_DECAY = 0.0005  # vgg_arg_scope's, in slim's convention


# --- layer settings -----------------------------------------------------------------------------------

def conv(x, filters, kernel, name, weight_decay, padding="same", activation="relu", dtype=None):
    """slim.conv2d under vgg_arg_scope: ReLU, zero biases, xavier-uniform kernels with slim's l2."""
    return layers.Conv2D(filters, kernel, padding=padding, activation=activation,
                         kernel_regularizer=keras.regularizers.L2(weight_decay / 2), name=name, dtype=dtype)(x)


# --- trunk --------------------------------------------------------------------------------------------

def vgg(name, repeats, num_classes, input_shape, weight_decay):
    images = keras.Input(shape=input_shape, name="images")
    x = images
    for block, (count, filters) in enumerate(zip(repeats, FILTERS), 1):
        for i in range(1, count + 1):
            x = conv(x, filters, 3, SEP.join([f"conv{block}", f"conv{block}_{i}"]), weight_decay)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = conv(x, 4096, 7, "fc6", weight_decay, padding="valid")
    x = layers.Dropout(0.5, name="dropout6")(x)
    x = conv(x, 4096, 1, "fc7", weight_decay)
    x = layers.Dropout(0.5, name="dropout7")(x)
    x = conv(x, num_classes, 1, "fc8", weight_decay, activation=None, dtype="float32")
    logits = layers.Reshape((num_classes,), name="fc8" + SEP + "squeezed", dtype="float32")(x)
    return keras.Model(images, logits, name=name)


# --- registered builders ------------------------------------------------------------------------------

@register_model(*REPEATS)
def vgg_net(name, num_classes, input_shape=(224, 224, 3), weight_decay=None):
    return vgg(name, REPEATS[name], num_classes, input_shape,
               DEFAULT_WEIGHT_DECAY if weight_decay is None else weight_decay)
