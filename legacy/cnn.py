"""The classic CNNs of the articles the TF1 way: variable scopes, ``get_variable`` and tf_slim layers in an
explicit graph (twin: kerasnets/cnn.py).

* ``lenet5``: article 004's ``inference`` as printed but working — ``tf.variable_scope`` + ``tf.get_variable``
  (``tf.Variable`` in a scope cannot be reused or found by name), conv5's weights ``[5, 5, 16, 120]`` (printed
  ``[5, 5, 6, 16]``), conv3's missing ``padding`` set to VALID, ``tf.matmul`` for the non-existent
  ``tf.nn.matmul``, RGB input, and no softmax at the end;
* ``alexnet``, ``vgg13``, ``googlenet_cifar``: the articles' Keras models as slim layers of their era
  (``slim.conv2d`` / ``slim.fully_connected`` with biases and xavier-uniform weights, no normaliser).

Every model returns logits under a ``logits`` scope (the articles' softmax and AlexNet's sigmoid move into the
loss). Dropout is active only when ``is_training``.

Sections, in the same order as the twin: layer settings, models, registered builders.
"""

from legacy.registry import register_model
from legacy.slim_compat import slim, tf


# --- layer settings -----------------------------------------------------------------------------------

def arg_scope(weight_decay):
    """No BN, ReLU, SAME padding, slim's l2 (weight_decay * sum(w**2) / 2) when weight_decay > 0."""
    regularizer = slim.l2_regularizer(weight_decay) if weight_decay else None
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=tf.nn.relu, normalizer_fn=None,
                        weights_regularizer=regularizer):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d], padding="SAME") as scope:
            return scope


def _variables(shape, weight_decay):
    regularizer = slim.l2_regularizer(weight_decay) if weight_decay else None
    weights = tf.get_variable("weights", shape, initializer=tf.truncated_normal_initializer(stddev=0.1),
                              regularizer=regularizer)
    biases = tf.get_variable("biases", shape[-1:], initializer=tf.zeros_initializer())
    return weights, biases


# --- models -------------------------------------------------------------------------------------------

def lenet5(images, num_classes, weight_decay, is_training, end_points):
    del is_training  # no dropout, no BN
    net = images
    for scope, shape, pool in (("conv1", [5, 5, 3, 6], "pool2"), ("conv3", [5, 5, 6, 16], "pool4"),
                               ("conv5", [5, 5, 16, 120], None)):
        with tf.variable_scope(scope):
            weights, biases = _variables(shape, weight_decay)
            net = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(net, weights, [1, 1, 1, 1], padding="VALID"), biases))
        end_points[scope] = net
        if pool:
            net = tf.nn.max_pool2d(net, [1, 2, 2, 1], [1, 2, 2, 1], padding="VALID", name=pool)
    net = tf.reshape(net, [-1, net.shape[1] * net.shape[2] * net.shape[3]], name="flatten")
    with tf.variable_scope("fc6"):
        weights, biases = _variables([net.shape[1], 84], weight_decay)
        net = tf.nn.relu(tf.matmul(net, weights) + biases)
    with tf.variable_scope("logits"):
        weights, biases = _variables([84, num_classes], weight_decay)
        return tf.matmul(net, weights) + biases


def alexnet(images, num_classes, weight_decay, is_training, end_points):
    net = slim.conv2d(images, 96, 11, stride=4, scope="conv1")
    net = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="pool1")
    net = slim.conv2d(net, 256, 5, scope="conv2")
    net = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="pool2")
    net = slim.conv2d(net, 384, 3, scope="conv3")
    net = slim.conv2d(net, 384, 3, scope="conv4")
    net = slim.conv2d(net, 256, 3, scope="conv5")
    net = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="pool5")
    net = tf.reshape(net, [-1, net.shape[1] * net.shape[2] * net.shape[3]], name="flatten")
    net = slim.dropout(slim.fully_connected(net, 512, scope="fc6"), 0.5, is_training=is_training, scope="dropout6")
    net = slim.dropout(slim.fully_connected(net, 256, scope="fc7"), 0.5, is_training=is_training, scope="dropout7")
    return slim.fully_connected(net, num_classes, activation_fn=None, scope="logits")


VGG13_UNITS = [64, 128, 256, 512, 512]  # two 3x3 convs per unit, then a 2x2 max-pool


def vgg13(images, num_classes, weight_decay, is_training, end_points):
    net = images
    for u, filters in enumerate(VGG13_UNITS, 1):
        net = slim.conv2d(net, filters, 3, scope=f"conv{u}_1")
        net = slim.conv2d(net, filters, 3, scope=f"conv{u}_2")
        net = slim.max_pool2d(net, 2, stride=2, scope=f"pool{u}")
    net = tf.reshape(net, [-1, net.shape[1] * net.shape[2] * net.shape[3]], name="flatten")
    net = slim.fully_connected(net, 256, scope="fc6")
    net = slim.fully_connected(net, 128, scope="fc7")
    return slim.fully_connected(net, num_classes, activation_fn=None, scope="logits")


# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) filters of each module, the article's numbers
INCEPTIONS = {"inception3a": [64, 96, 128, 16, 32, 32], "inception3b": [128, 128, 192, 32, 96, 64],
              "inception4a": [192, 96, 208, 16, 48, 64]}


def inception(net, filters, scope):
    f1, f3r, f3, f5r, f5, fp = filters
    with tf.variable_scope(scope):
        branch1 = slim.conv2d(net, f1, 1, scope="branch1x1")
        branch3 = slim.conv2d(slim.conv2d(net, f3r, 1, scope="branch3x3_reduce"), f3, 3, scope="branch3x3")
        branch5 = slim.conv2d(slim.conv2d(net, f5r, 1, scope="branch5x5_reduce"), f5, 5, scope="branch5x5")
        pool = slim.max_pool2d(net, 3, stride=1, scope="pool")
        branch_pool = slim.conv2d(pool, fp, 1, scope="pool_proj")
        return tf.concat([branch1, branch3, branch5, branch_pool], axis=3, name="concat")


def googlenet_cifar(images, num_classes, weight_decay, is_training, end_points):
    net = slim.conv2d(images, 64, 7, stride=2, scope="conv1")
    net = slim.max_pool2d(net, 3, stride=2, scope="pool1")
    net = inception(net, INCEPTIONS["inception3a"], "inception3a")
    net = inception(net, INCEPTIONS["inception3b"], "inception3b")
    net = slim.max_pool2d(net, 3, stride=2, scope="pool3")
    net = inception(net, INCEPTIONS["inception4a"], "inception4a")
    net = tf.reduce_mean(net, [1, 2], name="pool5")
    return slim.fully_connected(net, num_classes, activation_fn=None, scope="logits")


# --- registered builders ------------------------------------------------------------------------------

NETS = {"lenet5": lenet5, "alexnet": alexnet, "vgg13": vgg13, "googlenet_cifar": googlenet_cifar}


@register_model(*NETS)
def cnn(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None):
    """``NETS[name]`` in the arg scope and the model's own variable scope, with the logits end point. These models
    have no BN, so ``batch_norm_decay`` changes nothing; their table's weight decay is 0."""
    del batch_norm_decay
    end_points = {}
    with slim.arg_scope(arg_scope(weight_decay)):
        with tf.variable_scope(name, values=[images]):
            logits = NETS[name](images, num_classes, weight_decay, is_training, end_points)
    end_points[f"{name}/logits"] = logits
    return logits, end_points
