"""The naming rule on Keras 3's models: TF1 (name-based) checkpoints in and out of a keras3 model.

``weight_names``, ``assign`` and ``load`` are ``kerasnets.naming``'s, which reads each package's weight names as
they are (Keras 3: ``v.name`` is ``kernel``, without tf_keras's ``layer/`` prefix and ``:0``; ``DepthwiseConv2D``'s
weight is ``kernel``, tf_keras's ``depthwise_kernel``). Keras 3's own ``.weights.h5`` keys weights by class and
order, not by layer name, so weights cross into and out of Keras 3 as ``{TF1 name: array}``.
"""

from core.checkpoints import SEP, layer_name, modern_name, scope_name
from kerasnets.naming import assign, assign_converted, initialise, load, weight_names

__all__ = ["SEP", "layer_name", "scope_name", "modern_name", "weight_names", "assign", "assign_converted",
           "initialise", "load"]
