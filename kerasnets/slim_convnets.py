"""tf_slim's plain convolutional nets the Keras way: functional models of the layer kit that load research/slim's
checkpoints (twin: legacy/slim_convnets.py).

VGG (``vgg_a``, ``vgg_16``, ``vgg_19``), AlexNet v2 and OverFeat, each a table of layers. Where tf_slim's
``nets/vgg.py``, ``nets/alexnet.py``, ``nets/overfeat.py`` (under their arg scopes) and Keras differ, and what is
done here:

* names: ``slim.repeat(net, 2, conv2d, 64, [3, 3], scope="conv1")`` makes the scopes ``conv1/conv1_1`` and
  ``conv1/conv1_2``; the layers are ``conv1__conv1_1``, ``conv1__conv1_2`` by the naming rule. The head is
  ``fc8`` (these nets have no ``logits`` scope), its squeeze ``fc8__squeezed``;
* fully-connected layers: slim writes them as convolutions — ``fc6`` a VALID one as large as the last pool
  (7x7 in VGG, 5x5 in AlexNet v2, 6x6 in OverFeat), ``fc7`` and ``fc8`` 1x1 — so their kernels are
  ``[7, 7, 512, 4096]``, not a ``Dense`` layer's ``[25088, 4096]``: ``Conv2D`` here, and the same input range
  (the model table's ``min_size`` to ``max_size``, where the last pool has fc6's size);
* ``spatial_squeeze=True``: ``tf.squeeze(net, [1, 2])`` of the ``[B, 1, 1, C]`` logits is a ``Reshape``;
* padding: the arg scopes make every convolution SAME (Keras's default is VALID) except the ones written VALID
  (AlexNet v2's and OverFeat's ``conv1``, OverFeat's ``conv2``, every ``fc6``); every max-pool is VALID
  (VGG and OverFeat 2x2 stride 2, AlexNet v2 3x3 stride 2);
* initialisation: slim.conv2d's xavier-uniform kernels are ``glorot_uniform``; AlexNet v2's and OverFeat's
  ``fc6``-``fc8`` take ``trunc_normal(0.005)`` (``TruncatedNormal(stddev=0.005)``); biases are 0, except
  AlexNet v2's convolutions and both nets' ``fc6`` / ``fc7`` (0.1);
* regularization: ``l2_regularizer(5e-4)`` on every kernel is ``L2(2.5e-4)`` (slim halves the sum of squares);
  biases are not regularized in either;
* dropout: slim's ``dropout(keep_prob=0.5, is_training)`` after ``fc6`` and ``fc7`` is ``Dropout(0.5)``, active
  only when the model is called with ``training=True``;
* no batch norm: ``--bn-decay`` is refused (the model table's ``bn_decay``).

Sections, in the same order as the twin: the table, layer settings, trunk, registered builders.
"""

from core.checkpoints import SEP
from kerasnets.kit import keras, layers
from kerasnets.registry import register_model

# --- the table ----------------------------------------------------------------------------------------
# features: ("conv", scope, filters, kernel, stride, padding) and ("pool", scope, size, stride)
# head: (fc6 filters, fc6 kernel, fc7 filters); inits: (conv biases, fc kernels' truncated-normal stddev or
# None for glorot_uniform, fc6 / fc7 biases)


def _vgg(repeats):
    features = []
    for block, (count, filters) in enumerate(zip(repeats, (64, 128, 256, 512, 512)), 1):
        features += [("conv", SEP.join([f"conv{block}", f"conv{block}_{i}"]), filters, 3, 1, "same")
                     for i in range(1, count + 1)]
        features.append(("pool", f"pool{block}", 2, 2))
    return {"features": features, "head": (4096, 7, 4096), "inits": (0.0, None, 0.0)}


NETS = {
    "vgg_a": _vgg((1, 1, 2, 2, 2)),
    "vgg_16": _vgg((2, 2, 3, 3, 3)),
    "vgg_19": _vgg((2, 2, 4, 4, 4)),
    "alexnet_v2": {"features": [("conv", "conv1", 64, 11, 4, "valid"), ("pool", "pool1", 3, 2),
                                ("conv", "conv2", 192, 5, 1, "same"), ("pool", "pool2", 3, 2),
                                ("conv", "conv3", 384, 3, 1, "same"), ("conv", "conv4", 384, 3, 1, "same"),
                                ("conv", "conv5", 256, 3, 1, "same"), ("pool", "pool5", 3, 2)],
                   "head": (4096, 5, 4096), "inits": (0.1, 0.005, 0.1)},
    "overfeat": {"features": [("conv", "conv1", 64, 11, 4, "valid"), ("pool", "pool1", 2, 2),
                              ("conv", "conv2", 256, 5, 1, "valid"), ("pool", "pool2", 2, 2),
                              ("conv", "conv3", 512, 3, 1, "same"), ("conv", "conv4", 1024, 3, 1, "same"),
                              ("conv", "conv5", 1024, 3, 1, "same"), ("pool", "pool5", 2, 2)],
                 "head": (3072, 6, 4096), "inits": (0.0, 0.005, 0.1)},
}


# --- layer settings -----------------------------------------------------------------------------------

def conv(x, filters, kernel, name, weight_decay, stride=1, padding="same", activation="relu", stddev=None,
         bias=0.0, dtype=None):
    """slim.conv2d under these nets' arg scopes: ReLU, slim's l2 on the kernel, xavier-uniform kernels (or
    ``trunc_normal(stddev)``), constant biases."""
    kernels = "glorot_uniform" if stddev is None else keras.initializers.TruncatedNormal(stddev=stddev)
    return layers.Conv2D(filters, kernel, strides=stride, padding=padding, activation=activation,
                         kernel_initializer=kernels, bias_initializer=keras.initializers.Constant(bias),
                         kernel_regularizer=keras.regularizers.L2(weight_decay / 2), name=name, dtype=dtype)(x)


# --- trunk --------------------------------------------------------------------------------------------

def convnet(name, features, head, inits, num_classes, input_shape, weight_decay, dropout_keep_prob):
    conv_bias, fc_stddev, fc_bias = inits
    images = keras.Input(shape=input_shape, name="images")
    x = images
    for kind, scope, *shape in features:
        if kind == "conv":
            filters, kernel, stride, padding = shape
            x = conv(x, filters, kernel, scope, weight_decay, stride, padding, bias=conv_bias)
        else:
            x = layers.MaxPooling2D(shape[0], strides=shape[1], name=scope)(x)
    fc6, fc6_kernel, fc7 = head
    x = conv(x, fc6, fc6_kernel, "fc6", weight_decay, padding="valid", stddev=fc_stddev, bias=fc_bias)
    x = layers.Dropout(1 - dropout_keep_prob, name="dropout6")(x)
    x = conv(x, fc7, 1, "fc7", weight_decay, stddev=fc_stddev, bias=fc_bias)
    x = layers.Dropout(1 - dropout_keep_prob, name="dropout7")(x)
    x = conv(x, num_classes, 1, "fc8", weight_decay, activation=None, stddev=fc_stddev, dtype="float32")
    logits = layers.Reshape((num_classes,), name="fc8" + SEP + "squeezed", dtype="float32")(x)
    return keras.Model(images, logits, name=name)


# --- registered builders ------------------------------------------------------------------------------

@register_model(*NETS)
def slim_convnet(name, num_classes, input_shape, weight_decay=None, dropout_keep_prob=None):
    return convnet(name, **NETS[name], num_classes=num_classes, input_shape=input_shape,
                   weight_decay=weight_decay, dropout_keep_prob=dropout_keep_prob)
