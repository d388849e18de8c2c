"""The classic CNNs of the articles the Keras way: functional models of the layer kit (twin: legacy/cnn.py).

* ``lenet5`` (article 004's TF1 ``inference``): its printed bugs fixed — conv5's weights were ``[5, 5, 6, 16]``
  (they take 16 channels and make 120), conv3 had no ``padding`` (VALID, as LeNet), ``tf.nn.matmul`` does not
  exist (``tf.matmul``) — and RGB input instead of grey;
* ``alexnet`` (004, its Fashion-MNIST set-up resized to 224): the article's reduced 512 / 256 dense layers;
* ``vgg13`` (004, the CIFAR-100 set-up): ten 3x3 convs in five units, then 256 / 128 dense layers;
* ``googlenet_cifar`` (the end of 001): a 7x7 stem and three Inception modules.

Every model returns logits: the articles' ``softmax`` outputs move into the loss (``from_logits=True``), and
004's AlexNet, which ended in a ``sigmoid`` under a softmax cross-entropy (a bug), ends in logits too. The
head is named ``logits`` in every model so that ``--exclude-scopes logits`` fine-tunes any of them, and
computes in float32 under a mixed-precision policy. The
articles' Keras defaults are kept (convs with biases, glorot-uniform kernels, no weight decay);
``ImageDataGenerator`` / ``fit_generator`` / ``lr=`` of their training code became flowio's reader and
``fit`` with ``learning_rate=`` in modern/train.py.

Sections, in the same order as the twin: layer settings, models, registered builders.
"""

from core.checkpoints import SEP
from kerasnets.kit import keras, layers
from kerasnets.registry import register_model


# --- layer settings -----------------------------------------------------------------------------------

def conv(x, filters, kernel, name, weight_decay, stride=1, padding="same", activation="relu"):
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    return layers.Conv2D(filters, kernel, strides=stride, padding=padding, activation=activation,
                         kernel_regularizer=regularizer, name=name)(x)


def dense(x, units, name, weight_decay, activation="relu", dtype=None):
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    return layers.Dense(units, activation=activation, kernel_regularizer=regularizer, name=name, dtype=dtype)(x)


def head(x, num_classes, weight_decay):
    """The logits, computed in float32 under any mixed-precision policy."""
    return dense(x, num_classes, "logits", weight_decay, activation=None, dtype="float32")


# --- models -------------------------------------------------------------------------------------------

def lenet5(images, num_classes, weight_decay):
    x = conv(images, 6, 5, "conv1", weight_decay, padding="valid")
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = conv(x, 16, 5, "conv3", weight_decay, padding="valid")
    x = layers.MaxPooling2D(2, name="pool4")(x)
    x = conv(x, 120, 5, "conv5", weight_decay, padding="valid")
    x = layers.Flatten(name="flatten")(x)
    x = dense(x, 84, "fc6", weight_decay)
    return head(x, num_classes, weight_decay)


def alexnet(images, num_classes, weight_decay):
    x = conv(images, 96, 11, "conv1", weight_decay, stride=4)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = conv(x, 256, 5, "conv2", weight_decay)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = conv(x, 384, 3, "conv3", weight_decay)
    x = conv(x, 384, 3, "conv4", weight_decay)
    x = conv(x, 256, 3, "conv5", weight_decay)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout6")(dense(x, 512, "fc6", weight_decay))
    x = layers.Dropout(0.5, name="dropout7")(dense(x, 256, "fc7", weight_decay))
    return head(x, num_classes, weight_decay)


VGG13_UNITS = [64, 128, 256, 512, 512]  # two 3x3 convs per unit, then a 2x2 max-pool


def vgg13(images, num_classes, weight_decay):
    x = images
    for u, filters in enumerate(VGG13_UNITS, 1):
        x = conv(x, filters, 3, f"conv{u}_1", weight_decay)
        x = conv(x, filters, 3, f"conv{u}_2", weight_decay)
        x = layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{u}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense(x, 256, "fc6", weight_decay)
    x = dense(x, 128, "fc7", weight_decay)
    return head(x, num_classes, weight_decay)


# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) filters of each module, the article's numbers
INCEPTIONS = {"inception3a": [64, 96, 128, 16, 32, 32], "inception3b": [128, 128, 192, 32, 96, 64],
              "inception4a": [192, 96, 208, 16, 48, 64]}


def inception(x, filters, name, weight_decay):
    f1, f3r, f3, f5r, f5, fp = filters
    branch1 = conv(x, f1, 1, name + SEP + "branch1x1", weight_decay)
    branch3 = conv(conv(x, f3r, 1, name + SEP + "branch3x3_reduce", weight_decay), f3, 3,
                   name + SEP + "branch3x3", weight_decay)
    branch5 = conv(conv(x, f5r, 1, name + SEP + "branch5x5_reduce", weight_decay), f5, 5,
                   name + SEP + "branch5x5", weight_decay)
    pool = layers.MaxPooling2D(3, strides=1, padding="same", name=name + SEP + "pool")(x)
    branch_pool = conv(pool, fp, 1, name + SEP + "pool_proj", weight_decay)
    return layers.Concatenate(name=name + SEP + "concat")([branch1, branch3, branch5, branch_pool])


def googlenet_cifar(images, num_classes, weight_decay):
    x = conv(images, 64, 7, "conv1", weight_decay, stride=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = inception(x, INCEPTIONS["inception3a"], "inception3a", weight_decay)
    x = inception(x, INCEPTIONS["inception3b"], "inception3b", weight_decay)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool3")(x)
    x = inception(x, INCEPTIONS["inception4a"], "inception4a", weight_decay)
    x = layers.GlobalAveragePooling2D(name="pool5")(x)
    return head(x, num_classes, weight_decay)


# --- registered builders ------------------------------------------------------------------------------

NETS = {"lenet5": lenet5, "alexnet": alexnet, "vgg13": vgg13, "googlenet_cifar": googlenet_cifar}


@register_model(*NETS)
def cnn(name, num_classes, input_shape, weight_decay=None):
    """``NETS[name]`` on an input of ``input_shape``, the model named as the legacy scope. These models have no BN;
    their table's weight decay is 0."""
    images = keras.Input(shape=input_shape, name="images")
    return keras.Model(images, NETS[name](images, num_classes, weight_decay), name=name)
