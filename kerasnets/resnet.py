"""ResNets the Keras way: functional models of the layer kit, tf_keras's in modern/ and Keras 3's in keras3/
(twin: legacy/resnet.py).

Three families, one unit / stack / trunk code path driven by a depth table, with the same numbers as the
legacy half given the same weights (layer names follow the naming rule of ``core.checkpoints``, so TF1
checkpoints load by name):

* ``jianshu_resnet_{50,101,152}``: the article's network (parameter-free, zero-padding shortcuts);
* ``resnet_v1_{50,101,152,200}``: tf_slim's ``resnet_v1`` (projection shortcuts, BN after every conv);
* ``resnet_v2_{50,101,152,200}``: tf_slim's ``resnet_v2`` (pre-activation units), which legacy takes from
  tf_slim itself.

Where tf_slim's defaults and Keras's differ, the setting is spelled out here:

* BatchNorm: slim's ``decay=0.997`` is Keras's ``momentum=0.997`` (both keep 0.997 of the old average);
  ``epsilon=1e-5`` (Keras's default is 1e-3); ``scale=True`` (slim's default is False, resnet_arg_scope sets
  it); the kit's ``BatchNorm`` is TF1's fused kernel in every half (tf_keras's ``fused=True``; in Keras 3,
  which has no fused path, ``keras3.layers.BatchNorm``): it clamps epsilon to 1.001e-5 and updates the moving
  variance with the Bessel-corrected batch variance, so every half must use it for training-mode numbers
  to agree. The head BN (``postnorm``) keeps ``tf.layers.batch_normalization``'s defaults: 0.99, 1e-3.
* Weight decay: slim's ``l2_regularizer(wd)`` adds ``wd * tf.nn.l2_loss(w) = wd * sum(w**2) / 2``; Keras's
  ``L2(l)`` adds ``l * sum(w**2)``; so ``L2(wd / 2)`` is the same penalty.
* Padding: ``resnet_utils.conv2d_same`` pads explicitly (``(k - 1) // 2`` before, the rest after) and then
  convolves VALID when the stride is > 1; Keras's ``padding="same"`` pads only what the output needs, the
  extra pixel after (3x3 at stride 2 on 8x8: 0 before, 1 after), and gives other numbers on even sizes.
  ``conv2d_same`` below does what slim does.
* Stride placement: the stride is on the 3x3 ``conv2`` of the last unit of block1..block3 (slim's v1);
  ``tf_keras.applications.ResNet50`` puts it on the first unit's 1x1 instead.
* Depth filling: the article zero-pads channels with ``tf.pad``. In TF 2.21 with oneDNN, a graph with
  Conv2D(bias) -> Add(<- tf.pad) -> ReLU — exactly this unit — segfaults inside oneDNN's graph rewrite
  (docs/DESIGN.md §8). The kit's ``DepthFilling`` makes the same zeros by concatenating instead, which does not
  crash (tf ops in modern/kit.py, ``keras.ops`` in keras3/layers.py).
* Pre-activation (resnet_v2): the unit starts with ``preact`` = BN + ReLU of its input (a ``BatchNormalization``
  named ``<unit>__preact``: slim's ``batch_norm`` with ``activation_fn`` has no inner ``BatchNorm`` scope); the
  projection ``shortcut`` is a biased 1x1 conv of ``preact`` (of the raw input when the depth is kept: a 1x1
  max-pool, as in v1), ``conv1`` / ``conv2`` are conv + BN + ReLU, ``conv3`` a biased conv with neither, and
  the sum has no ReLU. The stem is a biased 7x7 conv with no BN and no ReLU; after the last block comes the
  head BN + ReLU ``postnorm`` (slim's arg scope: 0.997, 1e-5, with scale). tf_slim's ``resnet_v2`` returns
  ``[B, 1, 1, C]`` logits; both halves squeeze them (``spatial_squeeze``). Unlike v1, tf_keras's
  ``applications.ResNet50V2`` has this same layout (and parameter count), under other names.
* Initialisation: slim's ``variance_scaling_initializer()`` (factor 2, fan-in, truncated normal with
  stddev sqrt(1.3 * 2 / n)) is close to Keras's ``he_normal`` (sqrt(2 / n) / 0.8796); only training from
  scratch sees the difference.

Sections, in the same order as the twin: the depth table, layer settings, the article's shortcut pieces,
units, stack, trunk, registered builders.
"""

from core.checkpoints import SEP
from kerasnets.kit import keras, layers
from kerasnets.registry import register_model

# --- the depth table ----------------------------------------------------------------------------------
# Units per block; block i has bottleneck depth BASE_DEPTHS[i] and output depth 4x that. The stride is 2 on
# the last unit of block1..block3 (output stride 32, as in tf_slim).
UNITS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3], 200: [3, 24, 36, 3]}
BASE_DEPTHS = [64, 128, 256, 512]


def blocks(depth):
    """``[(block scope, [unit args, ...]), ...]`` of a ResNet-``depth``."""
    return [
        (f"block{i + 1}", [{"depth": 4 * base, "depth_bottleneck": base, "stride": 1}] * (units - 1)
         + [{"depth": 4 * base, "depth_bottleneck": base, "stride": 2 if i < 3 else 1}])
        for i, (base, units) in enumerate(zip(BASE_DEPTHS, UNITS[depth]))
    ]


# --- layer settings (what slim's arg scope sets) ------------------------------------------------------

def conv2d_same(x, filters, kernel, stride, name, weight_decay, use_bias):
    """slim's ``conv2d_same``: SAME padding at stride 1; explicit (k-1)//2-before padding + VALID otherwise."""
    conv = dict(kernel_initializer="he_normal", kernel_regularizer=keras.regularizers.L2(weight_decay / 2),
                use_bias=use_bias, name=name)
    if stride == 1:
        return layers.Conv2D(filters, kernel, strides=1, padding="same", **conv)(x)
    pad_total = kernel - 1
    pad = (pad_total // 2, pad_total - pad_total // 2)
    x = layers.ZeroPadding2D((pad, pad), name=name + SEP + "pad")(x)
    return layers.Conv2D(filters, kernel, strides=stride, padding="valid", **conv)(x)


def batch_norm(x, name, momentum=0.997, epsilon=1e-5):
    return layers.BatchNorm(momentum=momentum, epsilon=epsilon, center=True, scale=True, name=name)(x)


def conv_bn(x, filters, kernel, stride, name, weight_decay, relu=True):
    """slim.conv2d under the arg scope: conv without bias -> BN (``<name>__BatchNorm``) -> optional ReLU."""
    x = conv2d_same(x, filters, kernel, stride, name, weight_decay, use_bias=False)
    x = batch_norm(x, name + SEP + "BatchNorm")
    return layers.ReLU(name=name + SEP + "relu")(x) if relu else x


# --- the article's shortcut pieces --------------------------------------------------------------------

def sampling(x, stride, name):
    """The article's ``sampling``: subsample with a 1x1 max-pool of stride ``stride``."""
    return layers.MaxPooling2D(1, strides=stride, padding="same", name=name)(x)


# --- units --------------------------------------------------------------------------------------------

def jianshu_bottleneck(x, depth, depth_bottleneck, stride, name, weight_decay):
    """The article's unit: parameter-free shortcut, ``conv3`` with bias and no BN."""
    shortcut = x
    if depth != x.shape[-1]:
        shortcut = layers.DepthFilling(depth, name=name + SEP + "depth_filling")(shortcut)
    if stride > 1:
        shortcut = sampling(shortcut, stride, name + SEP + "sampling")
    r = conv_bn(x, depth_bottleneck, 1, 1, name + SEP + "conv1", weight_decay)
    r = conv_bn(r, depth_bottleneck, 3, stride, name + SEP + "conv2", weight_decay)
    r = conv2d_same(r, depth, 1, 1, name + SEP + "conv3", weight_decay, use_bias=True)
    return layers.ReLU(name=name)(layers.Add(name=name + SEP + "add")([shortcut, r]))


def bottleneck_v1(x, depth, depth_bottleneck, stride, name, weight_decay):
    """tf_slim's ``resnet_v1.bottleneck``: projection shortcut (1x1 conv + BN) where the depth changes."""
    if depth == x.shape[-1]:
        shortcut = sampling(x, stride, name + SEP + "shortcut") if stride > 1 else x
    else:
        shortcut = conv_bn(x, depth, 1, stride, name + SEP + "shortcut", weight_decay, relu=False)
    r = conv_bn(x, depth_bottleneck, 1, 1, name + SEP + "conv1", weight_decay)
    r = conv_bn(r, depth_bottleneck, 3, stride, name + SEP + "conv2", weight_decay)
    r = conv_bn(r, depth, 1, 1, name + SEP + "conv3", weight_decay, relu=False)
    return layers.ReLU(name=name)(layers.Add(name=name + SEP + "add")([shortcut, r]))


def bottleneck_v2(x, depth, depth_bottleneck, stride, name, weight_decay):
    """tf_slim's ``resnet_v2.bottleneck``: BN + ReLU first (``preact``), biased projection and ``conv3``, no ReLU
    after the sum."""
    preact = layers.ReLU(name=name + SEP + "preact" + SEP + "relu")(batch_norm(x, name + SEP + "preact"))
    if depth == x.shape[-1]:
        shortcut = sampling(x, stride, name + SEP + "shortcut") if stride > 1 else x
    else:
        shortcut = conv2d_same(preact, depth, 1, stride, name + SEP + "shortcut", weight_decay, use_bias=True)
    r = conv_bn(preact, depth_bottleneck, 1, 1, name + SEP + "conv1", weight_decay)
    r = conv_bn(r, depth_bottleneck, 3, stride, name + SEP + "conv2", weight_decay)
    r = conv2d_same(r, depth, 1, 1, name + SEP + "conv3", weight_decay, use_bias=True)
    return layers.Add(name=name)([shortcut, r])


UNIT_SCOPES = {jianshu_bottleneck: "bottleneck", bottleneck_v1: "bottleneck_v1", bottleneck_v2: "bottleneck_v2"}


# --- stack --------------------------------------------------------------------------------------------

def stack(x, blocks, unit_fn, weight_decay):
    """Run the units of each block; unit k of block i is named ``block{i}__unit_{k}__<unit scope>``."""
    for scope, units in blocks:
        for k, unit in enumerate(units):
            x = unit_fn(x, **unit, name=SEP.join([scope, f"unit_{k + 1}", UNIT_SCOPES[unit_fn]]),
                        weight_decay=weight_decay)
    return x


# --- trunk --------------------------------------------------------------------------------------------

def resnet(name, blocks, unit_fn, num_classes, input_shape, weight_decay, stem, postnorm):
    """Stem, stacked blocks, optional head BN, global average pool, 1x1 ``logits`` conv.

    ``stem``: ``"batch_norm"`` (v1: conv, BN, ReLU), ``"bias_relu"`` (the article: biased conv, ReLU) or ``"bias"``
    (v2: a biased conv alone); ``postnorm``: the head BN's ``(momentum, epsilon)``, or None for no head BN."""
    images = keras.Input(shape=input_shape, name="images")
    if stem == "batch_norm":
        x = conv_bn(images, 64, 7, 2, "conv1", weight_decay)
    else:
        x = conv2d_same(images, 64, 7, 2, "conv1", weight_decay, use_bias=True)
        if stem == "bias_relu":
            x = layers.ReLU(name="conv1" + SEP + "relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = stack(x, blocks, unit_fn, weight_decay)
    if postnorm is not None:
        momentum, epsilon = postnorm
        x = layers.ReLU(name="postnorm" + SEP + "relu")(batch_norm(x, "postnorm", momentum, epsilon))
    x = layers.GlobalAveragePooling2D(keepdims=True, name="pool5")(x)
    x = layers.Conv2D(num_classes, 1, kernel_initializer="he_normal",
                      kernel_regularizer=keras.regularizers.L2(weight_decay / 2), name="logits",
                      dtype="float32")(x)  # float32 under a mixed-precision policy, and so the reshape
    logits = layers.Reshape((num_classes,), name="spatial_squeeze", dtype="float32")(x)
    return keras.Model(images, logits, name=name)


# --- registered builders ------------------------------------------------------------------------------

@register_model("jianshu_resnet_50", "jianshu_resnet_101", "jianshu_resnet_152")
def jianshu_resnet(name, num_classes, input_shape=(224, 224, 3), weight_decay=None, *, depth):
    # the head BN is the article's tf.layers.batch_normalization, with its defaults
    return resnet(name, blocks(depth), jianshu_bottleneck, num_classes, input_shape,
                  weight_decay, stem="bias_relu",
                  postnorm=(0.99, 1e-3))


@register_model("resnet_v1_50", "resnet_v1_101", "resnet_v1_152", "resnet_v1_200")
def resnet_v1(name, num_classes, input_shape=(224, 224, 3), weight_decay=None, *, depth):
    return resnet(name, blocks(depth), bottleneck_v1, num_classes, input_shape,
                  weight_decay, stem="batch_norm", postnorm=None)


@register_model("resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200")
def resnet_v2(name, num_classes, input_shape=(299, 299, 3), weight_decay=None, *, depth):
    return resnet(name, blocks(depth), bottleneck_v2, num_classes, input_shape,
                  weight_decay, stem="bias",
                  postnorm=(0.997, 1e-5))
