"""research/slim's VGG the TF1 way: tf_slim's own ``nets.vgg`` functions (twin: modern/vgg.py).

These are the graphs research/slim's VGG checkpoints were trained with, so legacy does not rewrite them: it
calls ``tf_slim.nets.vgg.vgg_a`` / ``vgg_16`` / ``vgg_19`` under ``vgg_arg_scope`` and returns what they
return. Their variables are tf_slim's (``vgg_16/conv1/conv1_1/weights``, ``vgg_16/fc8/biases``: the head is
``fc8``, not ``logits``); the fully-connected layers are convolutions (``fc6`` a 7x7 VALID one), so the input
must be 224 to 255 pixels a side; dropout (keep 0.5) before ``fc7`` and ``fc8`` in training. No batch norm:
``--bn-decay`` is refused.

Sections, in the same order as the twin: the table, layer settings, trunk, registered builders.
"""

from legacy.registry import register_model
from legacy.slim_compat import slim
from tf_slim.nets import vgg

# --- the table ----------------------------------------------------------------------------------------
# tf_slim's functions hold their own depth tables (convolutions per block: vgg_a 1-1-2-2-2, vgg_16
# 2-2-3-3-3, vgg_19 2-2-4-4-4, of 64, 128, 256, 512, 512 filters)
NETS = {"vgg_a": vgg.vgg_a, "vgg_16": vgg.vgg_16, "vgg_19": vgg.vgg_19}
DEFAULT_WEIGHT_DECAY = 0.0005  # vgg_arg_scope's


# --- layer settings -----------------------------------------------------------------------------------

def arg_scope(weight_decay):
    """tf_slim's ``vgg_arg_scope``: ReLU, l2 on every kernel (``weight_decay * sum(w**2) / 2``), zero biases,
    SAME convolutions, xavier-uniform kernels (slim.conv2d's default)."""
    return vgg.vgg_arg_scope(DEFAULT_WEIGHT_DECAY if weight_decay is None else weight_decay)


# --- trunk --------------------------------------------------------------------------------------------

def slim_vgg(name, images, num_classes, is_training, weight_decay):
    """``(logits [batch, num_classes], end_points)`` of tf_slim's own network ``name``."""
    with slim.arg_scope(arg_scope(weight_decay)):
        return NETS[name](images, num_classes, is_training=is_training, spatial_squeeze=True, scope=name)


# --- registered builders ------------------------------------------------------------------------------

@register_model(*NETS)
def vgg_net(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None):
    del batch_norm_decay  # None: the registry refuses one for these nets
    return slim_vgg(name, images, num_classes, is_training, weight_decay)
