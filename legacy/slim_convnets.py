"""tf_slim's plain convolutional nets the TF1 way: its own ``nets.vgg``, ``nets.alexnet`` and ``nets.overfeat``
functions (twin: kerasnets/slim_convnets.py).

These are the graphs research/slim's checkpoints of VGG (``vgg_a``, ``vgg_16``, ``vgg_19``), AlexNet v2 and
OverFeat were trained with, so legacy does not rewrite them: it calls tf_slim's function under that net's own arg
scope and returns what it returns. What they share: no batch norm (``--bn-decay`` is refused), the
fully-connected layers written as convolutions (``fc6`` a VALID one over the last pool), dropout (keep 0.5)
before ``fc7`` and ``fc8``, the head ``fc8`` (not ``logits``), and so a fixed range of input sizes (the model
table's: VGG 224-255, AlexNet v2 195-226, OverFeat 231-262; tf_slim gives OverFeat no default size: 231).
Variables are tf_slim's: ``vgg_16/conv1/conv1_1/weights``, ``alexnet_v2/fc8/biases``.

Sections, in the same order as the twin: the table, layer settings, trunk, registered builders.
"""

from legacy.registry import register_model
from legacy.slim_compat import slim
from tf_slim.nets import alexnet, overfeat, vgg

# --- the table ----------------------------------------------------------------------------------------
# name: (tf_slim's function, its arg scope); the functions hold their own layer tables
NETS = {
    "vgg_a": (vgg.vgg_a, vgg.vgg_arg_scope),
    "vgg_16": (vgg.vgg_16, vgg.vgg_arg_scope),
    "vgg_19": (vgg.vgg_19, vgg.vgg_arg_scope),
    "alexnet_v2": (alexnet.alexnet_v2, alexnet.alexnet_v2_arg_scope),
    "overfeat": (overfeat.overfeat, overfeat.overfeat_arg_scope),
}


# --- layer settings -----------------------------------------------------------------------------------

def arg_scope(name, weight_decay):
    """The net's own tf_slim arg scope: ReLU, l2 on every kernel (``weight_decay * sum(w**2) / 2``), SAME
    convolutions; its biases (VGG and OverFeat 0, AlexNet v2 0.1) and, for AlexNet v2 and OverFeat, VALID pools."""
    return NETS[name][1](weight_decay)


# --- trunk --------------------------------------------------------------------------------------------

def slim_net(name, images, num_classes, is_training, weight_decay, dropout_keep_prob):
    """``(logits [batch, num_classes], end_points)`` of tf_slim's own network ``name``."""
    with slim.arg_scope(arg_scope(name, weight_decay)):
        return NETS[name][0](images, num_classes, is_training=is_training, dropout_keep_prob=dropout_keep_prob,
                             spatial_squeeze=True, scope=name)


# --- registered builders ------------------------------------------------------------------------------

@register_model(*NETS)
def slim_convnet(name, images, num_classes, is_training=True, weight_decay=None, batch_norm_decay=None,
                 dropout_keep_prob=None):
    del batch_norm_decay  # None: the registry refuses a decay for these nets
    return slim_net(name, images, num_classes, is_training, weight_decay, dropout_keep_prob)
