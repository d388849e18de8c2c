"""DenseNet-BC for 32x32 inputs (article 001) the TF1 way: tf_slim layers in an explicit graph
(twin: kerasnets/densenet.py).

The article's Keras network written as a slim graph of its era: ``slim.batch_norm`` (decay 0.9, epsilon
1e-5, scale, fused) + ReLU + ``slim.conv2d`` without bias or normaliser, ``tf.concat`` of the new channels
before the old, ``slim.avg_pool2d`` transitions, a ``slim.fully_connected`` head returning logits; slim's
``l2_regularizer(2e-4)`` is the article's Keras ``l2(1e-4)``. The BN moving averages update through
UPDATE_OPS, which legacy/train.py runs with each step.

Sections, in the same order as the twin: the table, layer settings, units, trunk, registered builders.
"""

from legacy.registry import register_model
from legacy.slim_compat import slim, tf

# --- the table ----------------------------------------------------------------------------------------
# The article's variants (growth rate k, bottleneck units per dense block) are rows of core.models' table,
# passed to the builder as settings.
NAMES = ("densenet_100x12", "densenet_100x24", "densenet_121x32", "densenet_169x32", "densenet_201x32",
         "densenet_161x48")
COMPRESSION = 0.5


# --- layer settings -----------------------------------------------------------------------------------

def arg_scope(weight_decay, is_training, batch_norm_decay=0.9):
    with slim.arg_scope([slim.conv2d], padding="SAME", activation_fn=None, normalizer_fn=None,
                        biases_initializer=None, weights_initializer=slim.variance_scaling_initializer(),
                        weights_regularizer=slim.l2_regularizer(weight_decay)):
        with slim.arg_scope([slim.batch_norm], decay=batch_norm_decay, epsilon=1e-5, scale=True, fused=True,
                            is_training=is_training) as scope:
            return scope


def bn_relu(net, scope):
    return tf.nn.relu(slim.batch_norm(net, scope=scope))


# --- units --------------------------------------------------------------------------------------------

def bottleneck(net, growth, scope):
    with tf.variable_scope(scope):
        y = slim.conv2d(bn_relu(net, "bn1"), 4 * growth, 1, scope="conv1")
        y = slim.conv2d(bn_relu(y, "bn2"), growth, 3, scope="conv2")
        return tf.concat([y, net], axis=3, name="concat")


def transition(net, scope):
    with tf.variable_scope(scope):
        net = slim.conv2d(bn_relu(net, "bn"), int(net.shape[-1] * COMPRESSION), 1, scope="conv")
        return slim.avg_pool2d(net, 2, stride=2, padding="VALID", scope="pool")


# --- trunk --------------------------------------------------------------------------------------------

def densenet(images, growth, units, num_classes, is_training, weight_decay, batch_norm_decay, scope):
    end_points = {}
    with slim.arg_scope(arg_scope(weight_decay, is_training, 0.9 if batch_norm_decay is None else batch_norm_decay)):
        with tf.variable_scope(scope, values=[images]) as sc:
            net = slim.conv2d(images, 2 * growth, 3, scope="conv1")
            for b, count in enumerate(units, 1):
                with tf.variable_scope(f"block{b}"):
                    for u in range(1, count + 1):
                        net = bottleneck(net, growth, f"unit_{u}")
                end_points[f"{sc.name}/block{b}"] = net
                if b < len(units):
                    net = transition(net, f"transition{b}")
            net = tf.reduce_mean(bn_relu(net, "postnorm"), [1, 2], name="pool5")
            logits = slim.fully_connected(net, num_classes, activation_fn=None,
                                          weights_initializer=slim.variance_scaling_initializer(),
                                          weights_regularizer=slim.l2_regularizer(weight_decay), scope="logits")
            end_points[f"{sc.name}/logits"] = logits
    return logits, end_points


# --- registered builders ------------------------------------------------------------------------------

@register_model(*NAMES)
def densenet_bc(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None, *, growth,
                units):
    return densenet(images, growth, units, num_classes, is_training,
                    weight_decay, batch_norm_decay, name)
