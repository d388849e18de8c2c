"""The naming rule applied to Keras layers: TF1 (name-based) checkpoints in and out of a modern model.

``weight_names``, ``assign`` and ``load`` are ``kerasnets.naming``'s (the same for Keras 3's models, keras3/naming.py).
The rule itself lives in ``core/checkpoints.py`` (every half uses it): a legacy variable
``<model>/<scope path>/<variable>`` is the weight ``<variable'>`` of the layer ``<scope path with "/" ->
"__">``, ``weights`` / ``biases`` being Keras's ``kernel`` / ``bias``:

    jianshu_resnet_50/block1/unit_1/bottleneck/conv1/BatchNorm/gamma
        <-> layer "block1__unit_1__bottleneck__conv1__BatchNorm", weight "gamma"

Layers that hold no weights follow the same rule (``block1__unit_1__bottleneck`` is the unit's output, as
the legacy end point of that name). Weights are saved in Keras's HDF5 format (``x.h5``), which keys them
by layer name; tf_keras's ``x.weights.h5`` and ``.keras`` key them by class and order (``conv2d_17``), so
they load only into the very same topology and cannot be mapped to TF1 names.
"""

from core.checkpoints import SEP, layer_name, modern_name, scope_name
from kerasnets.naming import assign, assign_converted, initialise, load, weight_names

__all__ = ["SEP", "layer_name", "scope_name", "modern_name", "weight_names", "assign", "assign_converted",
           "initialise", "load"]
