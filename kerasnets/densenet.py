"""DenseNet-BC for 32x32 inputs (article 001) the Keras way: functional models of the layer kit
(twin: legacy/densenet.py).

The article's code with its old Keras API brought up to tf_keras 2.21: ``keras.layers.normalization`` ->
``layers.BatchNormalization``, ``keras.layers.merge.Concatenate`` -> ``layers.Concatenate``,
``SGD(lr=...)`` -> ``learning_rate=``, ``fit_generator(ImageDataGenerator.flow(...))`` -> ``fit`` on
flowio's reader (modern/train.py). Its head's ``softmax`` moves into the loss: the model returns logits.
Otherwise as published: a 3x3 stem of 2k channels (k the growth rate), dense blocks of bottleneck units
(BN-ReLU-1x1 conv of 4k, BN-ReLU-3x3 conv of k, the new k channels concatenated *before* the old ones),
transitions halving channels (compression 0.5) and size (2x2 average pool), BN-ReLU, global average pool,
a dense head; BN momentum 0.9, epsilon 1e-5; convs without bias, He-normal; ``l2(1e-4)`` on every kernel,
which is ``weight_decay=2e-4`` in slim's convention (the coefficient of half the sum of squares). BN is
the kit's ``BatchNorm`` (TF1's fused kernel) as everywhere here.

Sections, in the same order as the twin: the table, layer settings, units, trunk, registered builders.
"""

from core.checkpoints import SEP
from kerasnets.kit import keras, layers
from kerasnets.registry import register_model

# --- the table ----------------------------------------------------------------------------------------
# The article's variants (growth rate k, bottleneck units per dense block) are rows of core.models' table,
# passed to the builder as settings.
NAMES = ("densenet_100x12", "densenet_100x24", "densenet_121x32", "densenet_169x32", "densenet_201x32",
         "densenet_161x48")
COMPRESSION = 0.5


# --- layer settings -----------------------------------------------------------------------------------

def conv(x, filters, kernel, name, weight_decay):
    return layers.Conv2D(filters, kernel, padding="same", use_bias=False, kernel_initializer="he_normal",
                         kernel_regularizer=keras.regularizers.L2(weight_decay / 2), name=name)(x)


def bn_relu(x, name):
    x = layers.BatchNorm(momentum=0.9, epsilon=1e-5, name=name)(x)
    return layers.ReLU(name=name + SEP + "relu")(x)


# --- units --------------------------------------------------------------------------------------------

def bottleneck(x, growth, name, weight_decay):
    y = conv(bn_relu(x, name + SEP + "bn1"), 4 * growth, 1, name + SEP + "conv1", weight_decay)
    y = conv(bn_relu(y, name + SEP + "bn2"), growth, 3, name + SEP + "conv2", weight_decay)
    return layers.Concatenate(name=name + SEP + "concat")([y, x])


def transition(x, name, weight_decay):
    x = conv(bn_relu(x, name + SEP + "bn"), int(x.shape[-1] * COMPRESSION), 1, name + SEP + "conv", weight_decay)
    return layers.AveragePooling2D(2, strides=2, name=name + SEP + "pool")(x)


# --- trunk --------------------------------------------------------------------------------------------

def densenet(name, growth, units, num_classes, input_shape, weight_decay):
    images = keras.Input(shape=input_shape, name="images")
    x = conv(images, 2 * growth, 3, "conv1", weight_decay)
    for b, count in enumerate(units, 1):
        for u in range(1, count + 1):
            x = bottleneck(x, growth, SEP.join([f"block{b}", f"unit_{u}"]), weight_decay)
        if b < len(units):
            x = transition(x, f"transition{b}", weight_decay)
    x = layers.GlobalAveragePooling2D(name="pool5")(bn_relu(x, "postnorm"))
    logits = layers.Dense(num_classes, kernel_initializer="he_normal",
                          kernel_regularizer=keras.regularizers.L2(weight_decay / 2), name="logits",
                          dtype="float32")(x)
    return keras.Model(images, logits, name=name)


# --- registered builders ------------------------------------------------------------------------------

@register_model(*NAMES)
def densenet_bc(name, num_classes, input_shape=(32, 32, 3), weight_decay=None, *, growth, units):
    return densenet(name, growth, units, num_classes, input_shape,
                    weight_decay)
