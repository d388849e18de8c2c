"""tf_slim's Inception v1, v2 and v3 the TF1 way: its own ``nets.inception_v1``, ``nets.inception_v2`` and
``nets.inception_v3`` functions (twin: kerasnets/inception.py).

These are the graphs research/slim's Inception checkpoints were trained with, so legacy does not rewrite them:
it calls tf_slim's function under that net's own arg scope (``inception_v1_arg_scope``, ``inception_v2_arg_scope``,
``inception_v3_arg_scope``) and returns what it returns. What they share: BN after every convolution but the
heads (decay 0.9997, epsilon 0.001, no gamma), l2 weight decay 4e-5, dropout (keep 0.8) before the head
``Logits/Conv2d_1c_1x1`` (v1's is ``Logits/Conv2d_0c_1x1``), and the top-level scope of the real checkpoints,
``InceptionV1``..``InceptionV3`` (the table's ``scope``), not the model's name. v1/v2's arg scopes fix BN's decay
(``--bn-decay`` is refused); v3's takes it. v3 always builds its auxiliary head (``end_points['AuxLogits']``,
scope ``InceptionV3/AuxLogits``), as tf_slim does by default. Input sizes (the model table's), all set by the
squeezed heads: v1's is a 7x7 VALID average pool, so 193-224 only; v2's and v3's shrink their pool for small
inputs but keep its stride 2, so v2 takes 1-256; v3's auxiliary head needs ``Mixed_6e`` 5 to 19 wide: 107-346.
Variables are tf_slim's: ``InceptionV3/Mixed_5b/Branch_1/Conv2d_0b_5x5/weights``,
``InceptionV2/Conv2d_1a_7x7/depthwise_weights``.

Sections, in the same order as the twin: the table, layer settings, trunk, registered builders.
"""

from core import models
from legacy.registry import register_model
from legacy.slim_compat import slim
from tf_slim.nets import inception_v1, inception_v2, inception_v3

# --- the table ----------------------------------------------------------------------------------------
# name: (tf_slim's function, its arg scope); the functions hold their own layer tables
NETS = {
    "inception_v1": (inception_v1.inception_v1, inception_v1.inception_v1_arg_scope),
    "inception_v2": (inception_v2.inception_v2, inception_v2.inception_v2_arg_scope),
    "inception_v3": (inception_v3.inception_v3, inception_v3.inception_v3_arg_scope),
}


# --- layer settings -----------------------------------------------------------------------------------

def arg_scope(name, weight_decay, batch_norm_decay):
    """The net's own tf_slim arg scope: conv2d with BN (decay 0.9997 unless v3 is given another, epsilon 0.001,
    center, no scale) and ReLU, variance-scaling kernels, l2 on every conv2d kernel (``weight_decay *
    sum(w**2) / 2``)."""
    if batch_norm_decay is None:
        return NETS[name][1](weight_decay=weight_decay)
    return NETS[name][1](weight_decay=weight_decay, batch_norm_decay=batch_norm_decay)


# --- trunk --------------------------------------------------------------------------------------------

def slim_net(name, images, num_classes, is_training, weight_decay, batch_norm_decay, dropout_keep_prob):
    """``(logits [batch, num_classes], end_points)`` of tf_slim's own network ``name``, under its checkpoints'
    scope."""
    with slim.arg_scope(arg_scope(name, weight_decay, batch_norm_decay)):
        return NETS[name][0](images, num_classes, is_training=is_training, dropout_keep_prob=dropout_keep_prob,
                             spatial_squeeze=True, scope=models.scope(name))


# --- registered builders ------------------------------------------------------------------------------

@register_model(*NETS)
def inception(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None,
              dropout_keep_prob=None, *, version):
    del version  # NETS is keyed by the name, which says it too
    return slim_net(name, images, num_classes, is_training, weight_decay, batch_norm_decay, dropout_keep_prob)
