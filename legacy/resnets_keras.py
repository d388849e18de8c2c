"""The ResNets of the Keras articles the TF1 way: tf_slim layers in variable scopes (twin:
kerasnets/resnets_keras.py).

* ``resnet18_cifar`` (article 000): 3x3 stem without max-pool, BasicBlocks without conv bias, projection
  (1x1 conv + BN) where the size changes;
* ``resnet18`` (article 004): 3x3 VALID stem with a 2x2 stride-1 max-pool, convs with biases, a bare 1x1
  conv as the downsampling shortcut;
* ``resnet50_keras`` (article 003): identity / convolutional blocks with the stride on the first 1x1 conv and
  the article's layer names as scopes (``res2a_branch2a``, ``bn2a_branch2a``, ...).

What the articles wrote as Keras classes becomes functions over scopes: a block is a ``tf.variable_scope``,
its layers slim calls with the articles' Keras defaults (BN decay 0.99, epsilon 1e-3, scale; no weight
decay unless asked). Every model returns logits from a ``logits`` scope.

Sections, in the same order as the twin: layer settings, blocks, models, registered builders.
"""

from legacy.registry import register_model
from legacy.slim_compat import slim, tf

STAGES = [64, 128, 256, 512]  # filters of the four stages of both ResNet-18s, two blocks each


# --- layer settings -----------------------------------------------------------------------------------

def arg_scope(weight_decay, is_training, batch_norm_decay=0.99):
    regularizer = slim.l2_regularizer(weight_decay) if weight_decay else None
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=None, normalizer_fn=None,
                        weights_regularizer=regularizer):
        with slim.arg_scope([slim.batch_norm], decay=batch_norm_decay, epsilon=1e-3, scale=True, fused=True,
                            is_training=is_training) as scope:
            return scope


# --- blocks -------------------------------------------------------------------------------------------

def cifar_block(net, filters, strides, down_sample, scope):
    """Article 000's ``ResBlock``: conv-BN-ReLU, conv-BN, (projected) shortcut, add, ReLU; convs without bias."""
    with tf.variable_scope(scope), slim.arg_scope([slim.conv2d], biases_initializer=None, padding="SAME"):
        out = tf.nn.relu(slim.batch_norm(slim.conv2d(net, filters, 3, stride=strides, scope="conv1"), scope="bn1"))
        out = slim.batch_norm(slim.conv2d(out, filters, 3, scope="conv2"), scope="bn2")
        if down_sample:
            net = slim.batch_norm(slim.conv2d(net, filters, 1, stride=strides, scope="down_conv"), scope="down_bn")
        return tf.nn.relu(out + net)


def basic_block(net, filters, stride, scope):
    """Article 004's ``BasicBlock``: convs with biases; the shortcut is a bare 1x1 conv when the stride is > 1."""
    with tf.variable_scope(scope):
        out = tf.nn.relu(slim.batch_norm(slim.conv2d(net, filters, 3, stride=stride, padding="SAME", scope="conv1"),
                                         scope="bn1"))
        out = slim.batch_norm(slim.conv2d(out, filters, 3, padding="SAME", scope="conv2"), scope="bn2")
        if stride != 1:
            net = slim.conv2d(net, filters, 1, stride=stride, padding="VALID", scope="downsample")
        return tf.nn.relu(out + net)


def conv_bn_block(net, filters, kernel, stride, stage, block, identity):
    """Article 003's ``identity_block`` (``identity=True``) and ``convolutional_block``, with its names."""
    f1, f2, f3 = filters
    base, bn_base = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
    shortcut = net
    net = slim.conv2d(net, f1, 1, stride=stride, padding="VALID", scope=base + "2a")
    net = tf.nn.relu(slim.batch_norm(net, scope=bn_base + "2a"))
    net = slim.conv2d(net, f2, kernel, padding="SAME", scope=base + "2b")
    net = tf.nn.relu(slim.batch_norm(net, scope=bn_base + "2b"))
    net = slim.batch_norm(slim.conv2d(net, f3, 1, padding="VALID", scope=base + "2c"), scope=bn_base + "2c")
    if not identity:
        shortcut = slim.conv2d(shortcut, f3, 1, stride=stride, padding="VALID", scope=base + "1")
        shortcut = slim.batch_norm(shortcut, scope=bn_base + "1")
    return tf.nn.relu(net + shortcut, name=f"res{stage}{block}")


# --- models -------------------------------------------------------------------------------------------

def resnet18_cifar(images, num_classes):
    with slim.arg_scope([slim.conv2d], biases_initializer=None):
        net = slim.conv2d(images, 64, 3, padding="SAME", scope="stem/conv")
    net = tf.nn.relu(slim.batch_norm(net, scope="stem/bn"))
    for s, filters in enumerate(STAGES, 1):
        with tf.variable_scope(f"layer{s}"):
            for b in (1, 2):
                first = s > 1 and b == 1
                net = cifar_block(net, filters, 2 if first else 1, first, f"block_{b}")
    net = tf.reduce_mean(net, [1, 2], name="pool5")
    return slim.fully_connected(net, num_classes, scope="logits")


def resnet18(images, num_classes, layer_dims=(2, 2, 2, 2)):
    net = slim.conv2d(images, 64, 3, padding="VALID", scope="stem/conv")
    net = tf.nn.relu(slim.batch_norm(net, scope="stem/bn"))
    net = slim.max_pool2d(net, 2, stride=1, padding="SAME", scope="stem/pool")
    for s, (filters, count) in enumerate(zip(STAGES, layer_dims), 1):
        with tf.variable_scope(f"layer{s}"):
            for b in range(1, count + 1):
                net = basic_block(net, filters, 2 if s > 1 and b == 1 else 1, f"block_{b}")
    net = tf.reduce_mean(net, [1, 2], name="pool5")
    return slim.fully_connected(net, num_classes, scope="logits")


# stage: (filters, blocks, stride of its convolutional block)
RESNET50_STAGES = {2: ([64, 64, 256], 3, 1), 3: ([128, 128, 512], 4, 2), 4: ([256, 256, 1024], 6, 2),
                   5: ([512, 512, 2048], 3, 2)}


def resnet50_keras(images, num_classes):
    net = tf.pad(images, [[0, 0], [3, 3], [3, 3], [0, 0]], name="conv1_pad")
    net = slim.conv2d(net, 64, 7, stride=2, padding="VALID", scope="conv1")
    net = tf.nn.relu(slim.batch_norm(net, scope="bn_conv1"))
    net = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="pool1")
    for stage, (filters, blocks, stride) in RESNET50_STAGES.items():
        for b in range(blocks):
            net = conv_bn_block(net, filters, 3, stride if b == 0 else 1, stage, "abcdef"[b], identity=b > 0)
    net = slim.avg_pool2d(net, 2, padding="SAME", scope="pool5")
    net = tf.reshape(net, [-1, net.shape[1] * net.shape[2] * net.shape[3]], name="flatten")
    return slim.fully_connected(net, num_classes, scope="logits")


# --- registered builders ------------------------------------------------------------------------------

NETS = {"resnet18_cifar": resnet18_cifar, "resnet18": resnet18, "resnet50_keras": resnet50_keras}


@register_model(*NETS)
def resnets_keras(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None):
    """``NETS[name]`` under the articles' Keras defaults (BN decay 0.99; the table's weight decay, 0), in scope
    ``name``."""
    with slim.arg_scope(arg_scope(weight_decay, is_training,
                                  0.99 if batch_norm_decay is None else batch_norm_decay)):
        with tf.variable_scope(name, values=[images]) as sc:
            logits = NETS[name](images, num_classes)
    return logits, {f"{sc.name}/logits": logits}
