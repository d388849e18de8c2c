"""tf_slim's Inception v1, v2 and v3 the Keras way: functional models of the layer kit that load research/slim's
checkpoints (twin: legacy/inception.py).

One table per net (stem layers and mixed blocks, each block's branches a list of layers) walked by one builder.
The model's name is the checkpoints' top-level scope (``InceptionV1``..``InceptionV3``, the model table's
``scope``), so the naming rule maps its weights to tf_slim's variables. Where tf_slim's
``nets/inception_v{1,2,3}.py`` (under their arg scopes) and Keras differ, and what is done here:

* names: scope ``Mixed_5b/Branch_0/Conv2d_0a_1x1`` is the layer ``Mixed_5b__Branch_0__Conv2d_0a_1x1``, its BN
  ``...__BatchNorm``, its ReLU ``...__relu``; a block's concatenation is named as its end point (``Mixed_5b``),
  v3's inner one in ``Mixed_7b``/``Mixed_7c`` ``<block>__Branch_k__concat``, the heads' squeezes
  ``Logits__SpatialSqueeze`` / ``AuxLogits__SpatialSqueeze``. tf_slim's scope names are kept as they are, slips
  included: v1's head is ``Logits/Conv2d_0c_1x1`` (v2/v3: ``Conv2d_1c_1x1``) after an average pool scoped
  ``MaxPool_0a_7x7``, v1's ``Mixed_5b/Branch_2/Conv2d_0a_3x3``, v3's ``Mixed_5c/Branch_1/Conv2d_0b_1x1`` +
  ``Conv_1_0c_5x5``, ``Mixed_6a``'s 3x3 convolutions ``Conv2d_1a_1x1``, ``Mixed_7b/Branch_1/Conv2d_0b_3x1``;
* padding (Keras defaults to VALID): v1 and v2 are SAME throughout their bases (convolutions and pools, stride 1
  unless said); v3's stem (``Conv2d_1a_3x3`` .. ``MaxPool_5a_3x3``) is VALID except ``Conv2d_2b_3x3``, its mixed
  blocks SAME except the stride-2 convolutions and max-pools of ``Mixed_6a`` and ``Mixed_7a`` (VALID). SAME is
  TensorFlow's SAME in both (the extra pixel after), and a SAME average pool divides by the pixels inside the
  image in both, so no explicit padding is needed (unlike the ResNets' ``conv2d_same``);
* batch norm (every ``slim.conv2d`` but the heads'): the arg scopes' decay 0.9997 (Keras's ``momentum``),
  epsilon 0.001, ``center=True`` and slim's default ``scale=False``: Keras ``scale=False`` (so no ``gamma``,
  only ``beta`` and the moving mean and variance), the kit's ``BatchNorm`` (the fused kernel, as slim's), so
  training-mode numbers agree.
  The convolutions before BN have no bias; the heads' have one and neither BN nor ReLU;
* initialisation: the arg scopes' ``variance_scaling_initializer()`` draws a normal truncated at 2 stddev with
  stddev ``sqrt(1.3 * 2 / fan_in)``; Keras's ``VarianceScaling(scale, "fan_in", "truncated_normal")`` uses
  ``sqrt(scale / fan_in) / 0.8796``, so ``scale = 2.6 * 0.8796**2`` is the same distribution. v1's base overrides
  it with ``trunc_normal(0.01)`` everywhere (its head keeps variance scaling); v2 sets ``trunc_normal`` 0.1 /
  0.09 on some 1x1 convolutions and 1.0 on the separable stem (depthwise and pointwise); v3's base keeps
  variance scaling, its auxiliary head has 0.01 (``Conv2d_2a``) and 0.001 (``Conv2d_2b_1x1``).
  ``TruncatedNormal(stddev)`` is slim's ``trunc_normal(stddev)``. Biases start at 0;
* regularization: slim's ``l2_regularizer(wd)`` adds ``wd * sum(w**2) / 2``, Keras's ``L2(l)`` ``l * sum(w**2)``:
  ``L2(wd / 2)`` on every ``slim.conv2d`` kernel, heads included (default wd 4e-5). Not on biases, BN's beta, nor
  v2's separable stem (the arg scopes name ``conv2d`` only);
* v2's stem ``Conv2d_1a_7x7`` is ``slim.separable_conv2d``: a 7x7 depthwise convolution with depth multiplier
  ``min(int(64 / 3), 8) = 8`` then a 1x1 to 64, stride 2, with bias and ReLU, no BN: ``SeparableConv2D(64, 7,
  depth_multiplier=8)``, whose ``depthwise_kernel`` / ``pointwise_kernel`` are slim's ``depthwise_weights`` /
  ``pointwise_weights`` (``core.checkpoints.TO_KERAS``);
* the head's average pool: v1's is a fixed 7x7 VALID at stride 1 (hence sizes 193-224: the base's output must be
  7x7); v2's (7x7) and v3's (8x8) shrink to the feature map when it is smaller
  (``_reduced_kernel_size_for_small_input``, which also names the scope: ``AvgPool_1a_3x3``) and keep slim's
  default stride 2 (Keras's default stride is the pool size), VALID, which bounds the largest size (v2: 256);
* dropout: slim's ``dropout(keep_prob=0.8, is_training)`` before the head is ``Dropout(1 - 0.8)``, active only
  when the model is called with ``training=True`` (``modern.build(dropout_keep_prob=1.0)`` switches it off);
* ``spatial_squeeze=True``: ``tf.squeeze(net, [1, 2])`` of the ``[B, 1, 1, C]`` logits is a ``Reshape``; the
  head and its squeeze compute in float32 under a mixed-precision policy (the aux head's too);
* v3's ``AuxLogits`` (tf_slim's ``create_aux_logits=True``, so legacy always has them): on ``Mixed_6e``, a 5x5
  average pool of stride 3 VALID, ``Conv2d_1b_1x1`` (128, BN), ``Conv2d_2a_{k}x{k}`` (768, VALID, BN) with
  ``k = min(5, the pooled map's side)`` (5 at 299; the name follows k), then ``Conv2d_2b_1x1`` to the classes.
  Only ``aux_logits=True`` builds them (the model then returns ``[logits, aux_logits]``); without, a checkpoint's
  ``AuxLogits`` scope must be excluded (``--exclude-scopes AuxLogits``). Either way the model refuses the sizes
  the auxiliary head cannot take (``Mixed_6e`` 5 to 19 wide: 107-346, the model table's range), as tf_slim's
  graph, which always has it, does; without the head v3 alone would take 75-362.

Sections, in the same order as the twin: the table, layer settings, trunk, registered builders.
"""

from core import models
from core.checkpoints import SEP
from kerasnets.kit import keras, layers
from kerasnets.registry import register_model

# --- the table ----------------------------------------------------------------------------------------
# Layers: ("conv", scope, filters, kernel, stride, padding, stddev): slim.conv2d + BN + ReLU, kernels
# trunc_normal(stddev), or the arg scope's variance scaling for None; ("separable", scope, filters, kernel,
# stride, padding, stddev, depthwise multiplier): v2's stem, bias + ReLU; ("max" | "avg", scope, size, stride,
# padding); ("fork", scope, layers): each of layers on the same input, concatenated (named scope); ("mixed",
# scope, branches): branch k (scope Branch_k) a list of layers, the branches concatenated.
# Kernels are a side or (height, width), slim's [1, 7] being (1, 7).


def _conv(scope, filters, kernel, stride=1, padding="same", stddev=None):
    return ("conv", scope, filters, kernel, stride, padding, stddev)


def _v1_mixed(scope, b0, b1, b2, b3, b2_3x3="Conv2d_0b_3x3"):
    """inception_v1's module: 1x1 | 1x1, 3x3 | 1x1, 3x3 | 3x3 max-pool, 1x1 (depths b0, b1, b2, b3)."""
    return ("mixed", scope, [
        [_conv("Conv2d_0a_1x1", b0, 1, stddev=0.01)],
        [_conv("Conv2d_0a_1x1", b1[0], 1, stddev=0.01), _conv("Conv2d_0b_3x3", b1[1], 3, stddev=0.01)],
        [_conv("Conv2d_0a_1x1", b2[0], 1, stddev=0.01), _conv(b2_3x3, b2[1], 3, stddev=0.01)],
        [("max", "MaxPool_0a_3x3", 3, 1, "same"), _conv("Conv2d_0b_1x1", b3, 1, stddev=0.01)]])


def _v2_mixed(scope, b0, b1, b2, b3, pool=("avg", "AvgPool_0a_3x3")):
    """inception_v2's module: 1x1 | 1x1, 3x3 | 1x1, 3x3, 3x3 | 3x3 pool (``pool``: kind, scope), 1x1."""
    return ("mixed", scope, [
        [_conv("Conv2d_0a_1x1", b0, 1)],
        [_conv("Conv2d_0a_1x1", b1[0], 1, stddev=0.09), _conv("Conv2d_0b_3x3", b1[1], 3)],
        [_conv("Conv2d_0a_1x1", b2[0], 1, stddev=0.09), _conv("Conv2d_0b_3x3", b2[1], 3),
         _conv("Conv2d_0c_3x3", b2[2], 3)],
        [(*pool, 3, 1, "same"), _conv("Conv2d_0b_1x1", b3, 1, stddev=0.1)]])


def _v2_reduction(scope, b0, b1):
    """inception_v2's grid reduction: 1x1, 3x3/2 | 1x1, 3x3, 3x3/2 | 3x3/2 max-pool, all SAME."""
    return ("mixed", scope, [
        [_conv("Conv2d_0a_1x1", b0[0], 1, stddev=0.09), _conv("Conv2d_1a_3x3", b0[1], 3, 2)],
        [_conv("Conv2d_0a_1x1", b1[0], 1, stddev=0.09), _conv("Conv2d_0b_3x3", b1[1], 3),
         _conv("Conv2d_1a_3x3", b1[2], 3, 2)],
        [("max", "MaxPool_1a_3x3", 3, 2, "same")]])


def _v3_35(scope, b3, b1_scopes=("Conv2d_0a_1x1", "Conv2d_0b_5x5")):
    """inception_v3's 35x35 module: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | 3x3 avg-pool, 1x1 (depth b3)."""
    return ("mixed", scope, [
        [_conv("Conv2d_0a_1x1", 64, 1)],
        [_conv(b1_scopes[0], 48, 1), _conv(b1_scopes[1], 64, 5)],
        [_conv("Conv2d_0a_1x1", 64, 1), _conv("Conv2d_0b_3x3", 96, 3), _conv("Conv2d_0c_3x3", 96, 3)],
        [("avg", "AvgPool_0a_3x3", 3, 1, "same"), _conv("Conv2d_0b_1x1", b3, 1)]])


def _v3_17(scope, d):
    """inception_v3's 17x17 module with factorized 7x7s of inner depth d: 1x1 | 1x1, 1x7, 7x1 |
    1x1, 7x1, 1x7, 7x1, 1x7 | 3x3 avg-pool, 1x1."""
    return ("mixed", scope, [
        [_conv("Conv2d_0a_1x1", 192, 1)],
        [_conv("Conv2d_0a_1x1", d, 1), _conv("Conv2d_0b_1x7", d, (1, 7)), _conv("Conv2d_0c_7x1", 192, (7, 1))],
        [_conv("Conv2d_0a_1x1", d, 1), _conv("Conv2d_0b_7x1", d, (7, 1)), _conv("Conv2d_0c_1x7", d, (1, 7)),
         _conv("Conv2d_0d_7x1", d, (7, 1)), _conv("Conv2d_0e_1x7", 192, (1, 7))],
        [("avg", "AvgPool_0a_3x3", 3, 1, "same"), _conv("Conv2d_0b_1x1", 192, 1)]])


def _v3_8(scope, b1_3x1):
    """inception_v3's 8x8 module with split 1x3 / 3x1 outputs: 1x1 | 1x1, (1x3 ; 3x1) | 1x1, 3x3, (1x3 ; 3x1) |
    3x3 avg-pool, 1x1."""
    return ("mixed", scope, [
        [_conv("Conv2d_0a_1x1", 320, 1)],
        [_conv("Conv2d_0a_1x1", 384, 1),
         ("fork", "concat", [_conv("Conv2d_0b_1x3", 384, (1, 3)), _conv(b1_3x1, 384, (3, 1))])],
        [_conv("Conv2d_0a_1x1", 448, 1), _conv("Conv2d_0b_3x3", 384, 3),
         ("fork", "concat", [_conv("Conv2d_0c_1x3", 384, (1, 3)), _conv("Conv2d_0d_3x1", 384, (3, 1))])],
        [("avg", "AvgPool_0a_3x3", 3, 1, "same"), _conv("Conv2d_0b_1x1", 192, 1)]])


# version: {"base": layers up to the last mixed block, "head": (pool scope, pool size, pool stride, whether the
# pool shrinks to a smaller map, dropout scope, classifier scope)}
NETS = {
    1: {"base": [
        _conv("Conv2d_1a_7x7", 64, 7, 2, stddev=0.01), ("max", "MaxPool_2a_3x3", 3, 2, "same"),
        _conv("Conv2d_2b_1x1", 64, 1, stddev=0.01), _conv("Conv2d_2c_3x3", 192, 3, stddev=0.01),
        ("max", "MaxPool_3a_3x3", 3, 2, "same"),
        _v1_mixed("Mixed_3b", 64, (96, 128), (16, 32), 32), _v1_mixed("Mixed_3c", 128, (128, 192), (32, 96), 64),
        ("max", "MaxPool_4a_3x3", 3, 2, "same"),
        _v1_mixed("Mixed_4b", 192, (96, 208), (16, 48), 64), _v1_mixed("Mixed_4c", 160, (112, 224), (24, 64), 64),
        _v1_mixed("Mixed_4d", 128, (128, 256), (24, 64), 64), _v1_mixed("Mixed_4e", 112, (144, 288), (32, 64), 64),
        _v1_mixed("Mixed_4f", 256, (160, 320), (32, 128), 128),
        ("max", "MaxPool_5a_2x2", 2, 2, "same"),
        _v1_mixed("Mixed_5b", 256, (160, 320), (32, 128), 128, b2_3x3="Conv2d_0a_3x3"),
        _v1_mixed("Mixed_5c", 384, (192, 384), (48, 128), 128)],
        "head": ("MaxPool_0a_7x7", 7, 1, False, "Dropout_0b", "Conv2d_0c_1x1")},
    2: {"base": [
        ("separable", "Conv2d_1a_7x7", 64, 7, 2, "same", 1.0, min(int(64 / 3), 8)),
        ("max", "MaxPool_2a_3x3", 3, 2, "same"),
        _conv("Conv2d_2b_1x1", 64, 1, stddev=0.1), _conv("Conv2d_2c_3x3", 192, 3),
        ("max", "MaxPool_3a_3x3", 3, 2, "same"),
        _v2_mixed("Mixed_3b", 64, (64, 64), (64, 96, 96), 32), _v2_mixed("Mixed_3c", 64, (64, 96), (64, 96, 96), 64),
        _v2_reduction("Mixed_4a", (128, 160), (64, 96, 96)),
        _v2_mixed("Mixed_4b", 224, (64, 96), (96, 128, 128), 128),
        _v2_mixed("Mixed_4c", 192, (96, 128), (96, 128, 128), 128),
        _v2_mixed("Mixed_4d", 160, (128, 160), (128, 160, 160), 96),
        _v2_mixed("Mixed_4e", 96, (128, 192), (160, 192, 192), 96),
        _v2_reduction("Mixed_5a", (128, 192), (192, 256, 256)),
        _v2_mixed("Mixed_5b", 352, (192, 320), (160, 224, 224), 128),
        _v2_mixed("Mixed_5c", 352, (192, 320), (192, 224, 224), 128, pool=("max", "MaxPool_0a_3x3"))],
        "head": ("AvgPool_1a_{}x{}", 7, 2, True, "Dropout_1b", "Conv2d_1c_1x1")},
    3: {"base": [
        _conv("Conv2d_1a_3x3", 32, 3, 2, "valid"), _conv("Conv2d_2a_3x3", 32, 3, 1, "valid"),
        _conv("Conv2d_2b_3x3", 64, 3), ("max", "MaxPool_3a_3x3", 3, 2, "valid"),
        _conv("Conv2d_3b_1x1", 80, 1, 1, "valid"), _conv("Conv2d_4a_3x3", 192, 3, 1, "valid"),
        ("max", "MaxPool_5a_3x3", 3, 2, "valid"),
        _v3_35("Mixed_5b", 32), _v3_35("Mixed_5c", 64, ("Conv2d_0b_1x1", "Conv_1_0c_5x5")), _v3_35("Mixed_5d", 64),
        ("mixed", "Mixed_6a", [
            [_conv("Conv2d_1a_1x1", 384, 3, 2, "valid")],
            [_conv("Conv2d_0a_1x1", 64, 1), _conv("Conv2d_0b_3x3", 96, 3), _conv("Conv2d_1a_1x1", 96, 3, 2, "valid")],
            [("max", "MaxPool_1a_3x3", 3, 2, "valid")]]),
        _v3_17("Mixed_6b", 128), _v3_17("Mixed_6c", 160), _v3_17("Mixed_6d", 160), _v3_17("Mixed_6e", 192),
        ("mixed", "Mixed_7a", [
            [_conv("Conv2d_0a_1x1", 192, 1), _conv("Conv2d_1a_3x3", 320, 3, 2, "valid")],
            [_conv("Conv2d_0a_1x1", 192, 1), _conv("Conv2d_0b_1x7", 192, (1, 7)), _conv("Conv2d_0c_7x1", 192, (7, 1)),
             _conv("Conv2d_1a_3x3", 192, 3, 2, "valid")],
            [("max", "MaxPool_1a_3x3", 3, 2, "valid")]]),
        _v3_8("Mixed_7b", "Conv2d_0b_3x1"), _v3_8("Mixed_7c", "Conv2d_0c_3x1")],
        "head": ("AvgPool_1a_{}x{}", 8, 2, True, "Dropout_1b", "Conv2d_1c_1x1"),
        # (end point it starts from, pool size, pool stride, 1x1 depth, 2a's largest kernel, 2a's depth)
        "aux": ("Mixed_6e", 5, 3, 128, 5, 768)},
}
VARIANCE_SCALING = 2.6 * 0.87962566103423978 ** 2  # slim's sqrt(1.3 * 2 / n) stddev, in Keras's terms


# --- layer settings -----------------------------------------------------------------------------------

def kernels(stddev):
    """A fresh initializer (Keras warns when one unseeded instance is shared): slim's ``trunc_normal(stddev)``, or
    for None the arg scopes' ``variance_scaling_initializer()``."""
    if stddev is None:
        return keras.initializers.VarianceScaling(VARIANCE_SCALING, "fan_in", "truncated_normal")
    return keras.initializers.TruncatedNormal(stddev=stddev)


def conv_bn(x, filters, kernel, stride, padding, stddev, name, weight_decay):
    """slim.conv2d under the arg scope: conv without bias -> BN (``<name>__BatchNorm``) -> ReLU."""
    x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                      kernel_initializer=kernels(stddev), kernel_regularizer=keras.regularizers.L2(weight_decay / 2),
                      name=name)(x)
    x = layers.BatchNorm(momentum=0.9997, epsilon=0.001, center=True, scale=False, name=name + SEP + "BatchNorm")(x)
    return layers.ReLU(name=name + SEP + "relu")(x)


def separable_conv(x, filters, kernel, stride, padding, stddev, multiplier, name):
    """v2's slim.separable_conv2d: outside the arg scope's ``conv2d``, so bias and ReLU, no BN, no l2."""
    return layers.SeparableConv2D(filters, kernel, strides=stride, padding=padding, depth_multiplier=multiplier,
                                  activation="relu", depthwise_initializer=kernels(stddev),
                                  pointwise_initializer=kernels(stddev), name=name)(x)


def classifier(x, num_classes, stddev, scope, conv, weight_decay):
    """A head's 1x1 ``slim.conv2d(activation_fn=None, normalizer_fn=None)`` (bias, l2) ``<scope>__<conv>`` and its
    squeeze ``<scope>__SpatialSqueeze``, in float32 under a mixed-precision policy."""
    x = layers.Conv2D(num_classes, 1, kernel_initializer=kernels(stddev),
                      kernel_regularizer=keras.regularizers.L2(weight_decay / 2), name=scope + SEP + conv,
                      dtype="float32")(x)
    return layers.Reshape((num_classes,), name=scope + SEP + "SpatialSqueeze", dtype="float32")(x)


def reduced_kernel(x, size):
    """slim's ``_reduced_kernel_size_for_small_input``: ``size`` shrunk to the map's sides where they are known."""
    return tuple(size if side is None else min(side, size) for side in x.shape[1:3])


# --- trunk --------------------------------------------------------------------------------------------

def apply(x, layer, prefix, weight_decay):
    """One entry of the table on ``x``; its layers are named ``prefix`` + its scope path."""
    kind, scope, *args = layer
    name = prefix + scope
    if kind == "conv":
        return conv_bn(x, *args, name, weight_decay)
    if kind == "separable":
        return separable_conv(x, *args, name)
    if kind in ("max", "avg"):
        pool = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
        size, stride, padding = args
        return pool(size, strides=stride, padding=padding, name=name)(x)
    if kind == "fork":
        return layers.Concatenate(name=name)([apply(x, part, prefix, weight_decay) for part in args[0]])
    outputs = []
    for k, branch in enumerate(args[0]):
        y = x
        for part in branch:
            y = apply(y, part, f"{name}{SEP}Branch_{k}{SEP}", weight_decay)
        outputs.append(y)
    return layers.Concatenate(name=name)(outputs)


def check_aux_fits(x, start, pool, stride, size):
    """A ValueError where v3's auxiliary head cannot be built on ``x`` (the map ``start``): smaller than its pool,
    or pooled to more than ``size``, which its VALID ``Conv2d_2a`` would not bring to 1x1 for the squeeze."""
    sides = [side for side in x.shape[1:3] if side is not None]
    if not all(pool <= side and (side - pool) // stride + 1 <= size for side in sides):
        raise ValueError(f"{start} is {x.shape[1]}x{x.shape[2]}; the auxiliary head needs {pool} to"
                         f" {size * stride + pool - 1} on each side")


def aux_head(x, pool, stride, depth, size, depth_2a, num_classes, weight_decay):
    """v3's ``AuxLogits``: average pool (VALID), 1x1, ``Conv2d_2a_{k}x{k}`` (VALID), ``Conv2d_2b_1x1``."""
    scope = "AuxLogits" + SEP
    x = layers.AveragePooling2D(pool, strides=stride, padding="valid", name=scope + f"AvgPool_1a_{pool}x{pool}")(x)
    x = conv_bn(x, depth, 1, 1, "same", None, scope + "Conv2d_1b_1x1", weight_decay)
    kernel = reduced_kernel(x, size)
    x = conv_bn(x, depth_2a, kernel, 1, "valid", 0.01, scope + "Conv2d_2a_{}x{}".format(*kernel), weight_decay)
    return classifier(x, num_classes, 0.001, "AuxLogits", "Conv2d_2b_1x1", weight_decay)


def inception_net(name, base, head, num_classes, input_shape, weight_decay, dropout_keep_prob, aux=None,
                  aux_logits=False):
    """Base, auxiliary head if asked, average pool, dropout, 1x1 classifier, squeeze; a model named ``name``.

    Where the net has an auxiliary head (``aux``), the sizes it cannot take are refused even without it: tf_slim
    builds it in every case, so legacy refuses them, and the model table's range holds in both halves.
    """
    start, pool, stride, depth, size, depth_2a = aux if aux is not None else (None,) * 6
    images = keras.Input(shape=input_shape, name="images")
    x, outputs = images, []
    for layer in base:
        x = apply(x, layer, "", weight_decay)
        if layer[1] == start:
            check_aux_fits(x, start, pool, stride, size)
            if aux_logits:
                outputs.append(aux_head(x, pool, stride, depth, size, depth_2a, num_classes, weight_decay))
    pool_scope, size, stride, reduced, dropout, conv = head
    kernel = reduced_kernel(x, size) if reduced else (size, size)
    x = layers.AveragePooling2D(kernel, strides=stride, padding="valid",
                                name="Logits" + SEP + pool_scope.format(*kernel))(x)
    x = layers.Dropout(1 - dropout_keep_prob, name="Logits" + SEP + dropout)(x)
    logits = classifier(x, num_classes, None, "Logits", conv, weight_decay)
    return keras.Model(images, [logits, *outputs] if outputs else logits, name=name)


# --- registered builders ------------------------------------------------------------------------------

@register_model("inception_v1", "inception_v2", "inception_v3")
def inception(name, num_classes, input_shape, weight_decay=None, dropout_keep_prob=None, *, version,
              aux_logits=False):
    """tf_slim's ``inception_v{version}`` as a model named by its checkpoints' scope; with ``aux_logits`` (v3
    only) it returns ``[logits, aux_logits]``."""
    net = NETS[version]
    if aux_logits and "aux" not in net:
        raise ValueError(f"{name} has no auxiliary logits (inception_v3 only)")
    return inception_net(models.scope(name), net["base"], net["head"], num_classes, input_shape,
                         weight_decay, dropout_keep_prob, net.get("aux"), aux_logits)
