"""ResNets the TF1 way: tf_slim layers in ``tf.compat.v1`` graph mode (twin: kerasnets/resnet.py).

Three families, one depth table:

* ``jianshu_resnet_{50,101,152}``, the article's network, reconstructed from its incomplete code: a 7x7 stem
  conv with bias and no BN, bottleneck units whose shortcut has no parameters — the channels are zero-padded
  (``depth_filling``, the article's ``depthFilling``) and subsampled with a 1x1 max-pool (``sampling``) —, a
  ``conv3`` with bias and no BN, and a head BN (``postnorm``, the article's ``tf.layers.batch_normalization``) before the pool.
* ``resnet_v1_{50,101,152,200}``: exactly ``tf_slim.nets.resnet_v1`` under ``resnet_arg_scope()`` — projection
  shortcuts, BN after every conv — with the same variable names, so checkpoints of either load into the other.
  These two share the unit / stack / trunk code below.
* ``resnet_v2_{50,101,152,200}``: tf_slim's own ``nets.resnet_v2`` functions (pre-activation units: BN + ReLU
  ``preact`` before the convs, a biased ``conv3`` and projection ``shortcut``, a biased stem without BN, a head
  BN ``postnorm``), called under tf_slim's ``resnet_arg_scope`` as research/slim's checkpoints were made; their
  ``[B, 1, 1, C]`` logits are squeezed here (tf_slim's resnet_v2 has no ``spatial_squeeze``).

Sections, in the same order as the twin: the depth table, layer settings, the article's shortcut pieces,
units, stack, trunk, registered builders.
"""

from legacy.registry import register_model
from legacy.slim_compat import resnet_utils, slim, tf
from tf_slim.nets import resnet_v2 as slim_resnet_v2

# --- the depth table ----------------------------------------------------------------------------------
# Units per block; block i has bottleneck depth BASE_DEPTHS[i] and output depth 4x that. The stride is 2 on
# the last unit of block1..block3 (output stride 32, as in tf_slim).
UNITS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3], 200: [3, 24, 36, 3]}
BASE_DEPTHS = [64, 128, 256, 512]
# resnet_v2: tf_slim's functions, which hold the same depth table
RESNET_V2 = {50: slim_resnet_v2.resnet_v2_50, 101: slim_resnet_v2.resnet_v2_101, 152: slim_resnet_v2.resnet_v2_152,
             200: slim_resnet_v2.resnet_v2_200}


def blocks(depth, unit_fn):
    """The ``resnet_utils.Block`` list of a ResNet-``depth``."""
    return [
        resnet_utils.Block(f"block{i + 1}", unit_fn,
                           [{"depth": 4 * base, "depth_bottleneck": base, "stride": 1}] * (units - 1)
                           + [{"depth": 4 * base, "depth_bottleneck": base, "stride": 2 if i < 3 else 1}])
        for i, (base, units) in enumerate(zip(BASE_DEPTHS, UNITS[depth]))
    ]


# --- layer settings (what slim's arg scope sets) ------------------------------------------------------

def arg_scope(weight_decay, is_training, batch_norm_decay=0.997):
    """tf_slim's ``resnet_arg_scope()`` with ``fused=True`` pinned (docs/DESIGN.md §3) and ``is_training`` set.

    BN decay 0.997, epsilon 1e-5, with scale; l2 weight decay on every conv's weights (``slim.l2_regularizer``
    adds ``weight_decay * tf.nn.l2_loss(w)``, i.e. half the sum of squares, to REGULARIZATION_LOSSES);
    He-normal initialisation; max-pools padded SAME.
    """
    batch_norm = {"decay": batch_norm_decay, "epsilon": 1e-5, "scale": True, "fused": True, "is_training": is_training,
                  "updates_collections": tf.GraphKeys.UPDATE_OPS}
    with slim.arg_scope([slim.conv2d],
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        weights_initializer=slim.variance_scaling_initializer(),
                        activation_fn=tf.nn.relu,
                        normalizer_fn=slim.batch_norm,
                        normalizer_params=batch_norm):
        with slim.arg_scope([slim.batch_norm], **batch_norm):
            with slim.arg_scope([slim.max_pool2d], padding="SAME") as scope:
                return scope


# --- the article's shortcut pieces --------------------------------------------------------------------

def depth_filling(inputs, depth):
    """The article's ``depthFilling``: zero-pad the channels to ``depth``, (depth - in) / 2 on each side."""
    pad = (depth - inputs.get_shape().as_list()[3]) // 2
    return tf.pad(inputs, [[0, 0], [0, 0], [0, 0], [pad, pad]], name="depth_filling")


def sampling(inputs, stride):
    """The article's ``sampling``: subsample with a 1x1 max-pool of stride ``stride``."""
    return slim.max_pool2d(inputs, 1, stride=stride, scope="sampling")


# --- units --------------------------------------------------------------------------------------------

def jianshu_bottleneck(inputs, depth, depth_bottleneck, stride, scope=None):
    """The article's unit: parameter-free shortcut, ``conv3`` with bias and no BN."""
    with tf.variable_scope(scope, "bottleneck", [inputs]):
        shortcut = inputs
        if depth != inputs.get_shape().as_list()[3]:
            shortcut = depth_filling(shortcut, depth)
        if stride > 1:
            shortcut = sampling(shortcut, stride)
        residual = slim.conv2d(inputs, depth_bottleneck, 1, stride=1, scope="conv1")
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3, stride, scope="conv2")
        residual = slim.conv2d(residual, depth, 1, stride=1, activation_fn=None, normalizer_fn=None, scope="conv3")
        return tf.nn.relu(shortcut + residual, name="output")


def bottleneck_v1(inputs, depth, depth_bottleneck, stride, scope=None):
    """tf_slim's ``resnet_v1.bottleneck``: projection shortcut (1x1 conv + BN) where the depth changes."""
    with tf.variable_scope(scope, "bottleneck_v1", [inputs]):
        if depth == inputs.get_shape().as_list()[3]:
            shortcut = resnet_utils.subsample(inputs, stride, "shortcut")
        else:
            shortcut = slim.conv2d(inputs, depth, 1, stride=stride, activation_fn=None, scope="shortcut")
        residual = slim.conv2d(inputs, depth_bottleneck, 1, stride=1, scope="conv1")
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3, stride, scope="conv2")
        residual = slim.conv2d(residual, depth, 1, stride=1, activation_fn=None, scope="conv3")
        return tf.nn.relu(shortcut + residual, name="output")


# --- stack --------------------------------------------------------------------------------------------

def stack(net, blocks, end_points):
    """Run the units of each block in ``block{i}/unit_{k}`` scopes; record each unit's output under its
    scope name (``.../unit_1/bottleneck``: the name of its ``output`` op without that last part)."""
    for block in blocks:
        with tf.variable_scope(block.scope, values=[net]):
            for k, unit in enumerate(block.args):
                with tf.variable_scope(f"unit_{k + 1}", values=[net]):
                    net = block.unit_fn(net, **unit)
                    end_points[net.op.name.rsplit("/", 1)[0]] = net
    return net


# --- trunk --------------------------------------------------------------------------------------------

def resnet(images, blocks, num_classes, is_training, weight_decay, batch_norm_decay, scope, stem_batch_norm,
           postnorm):
    """Stem, stacked blocks, optional head BN, global average pool, 1x1 ``logits`` conv.

    ``batch_norm_decay=None`` keeps each BN's own decay (0.997 in units, 0.99 in the head)."""
    end_points = {}
    with slim.arg_scope(arg_scope(weight_decay, is_training, 0.997 if batch_norm_decay is None else batch_norm_decay)):
        with tf.variable_scope(scope, values=[images]) as sc:
            stem = {} if stem_batch_norm else {"normalizer_fn": None}  # the article's stem: bias, no BN
            with slim.arg_scope([slim.conv2d], **stem):
                net = resnet_utils.conv2d_same(images, 64, 7, stride=2, scope="conv1")
            end_points[f"{sc.name}/conv1"] = net
            net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")
            end_points[f"{sc.name}/pool1"] = net
            net = stack(net, blocks, end_points)
            if postnorm:  # the article's tf.layers.batch_normalization, its defaults spelled out
                net = tf.layers.batch_normalization(net, momentum=0.99 if batch_norm_decay is None else batch_norm_decay,
                                                    epsilon=1e-3, center=True, scale=True, training=is_training,
                                                    fused=True, name="postnorm")
                net = tf.nn.relu(net)
                end_points[f"{sc.name}/postnorm"] = net
            net = tf.reduce_mean(net, [1, 2], keepdims=True, name="pool5")
            end_points[f"{sc.name}/pool5"] = net
            net = slim.conv2d(net, num_classes, 1, activation_fn=None, normalizer_fn=None, scope="logits")
            end_points[f"{sc.name}/logits"] = net
            logits = tf.squeeze(net, [1, 2], name="SpatialSqueeze")
            end_points[f"{sc.name}/spatial_squeeze"] = logits
    return logits, end_points


# --- registered builders ------------------------------------------------------------------------------

@register_model("jianshu_resnet_50", "jianshu_resnet_101", "jianshu_resnet_152")
def jianshu_resnet(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None, *, depth):
    return resnet(images, blocks(depth, jianshu_bottleneck), num_classes, is_training,
                  weight_decay, batch_norm_decay,
                  scope=name, stem_batch_norm=False, postnorm=True)


@register_model("resnet_v1_50", "resnet_v1_101", "resnet_v1_152", "resnet_v1_200")
def resnet_v1(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None, *, depth):
    return resnet(images, blocks(depth, bottleneck_v1), num_classes, is_training,
                  weight_decay, batch_norm_decay,
                  scope=name, stem_batch_norm=True, postnorm=False)


@register_model("resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200")
def resnet_v2(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None, *, depth):
    """tf_slim's ``resnet_v2_<depth>`` under its ``resnet_arg_scope`` (its BN is fused, as ``fused=None`` picks)."""
    scope = resnet_utils.resnet_arg_scope(weight_decay=weight_decay,
                                          batch_norm_decay=0.997 if batch_norm_decay is None else batch_norm_decay)
    with slim.arg_scope(scope):
        net, end_points = RESNET_V2[depth](images, num_classes, is_training=is_training, scope=name)
    logits = tf.squeeze(net, [1, 2], name=f"{name}/SpatialSqueeze")
    end_points[f"{name}/spatial_squeeze"] = logits
    return logits, end_points
