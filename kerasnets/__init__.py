"""kerasnets: every model of the table as a Keras net, written once for both Keras halves.

    with kerasnets.kit.using(kit):                       # what modern.build and keras3.build do
        model = builder(name, num_classes, input_shape, weight_decay, **settings)

The nets use no Keras package of their own: ``kerasnets.kit`` gives them the layers of the half building them
(modern/: tf_keras; keras3/: Keras 3 on TensorFlow or JAX). Each family module is the twin of legacy's module of
the same name, with the same sections; layer names follow the naming rule (``core.checkpoints``), so TF1
checkpoints load by name in both Keras halves. Imports ``core`` only.
"""

from kerasnets import (cnn, densenet, inception, resnet, resnets_keras,  # noqa: F401  (they register their models)
                       slim_convnets)
from kerasnets.registry import build, list_models, lookup, register_model

__all__ = ["build", "list_models", "lookup", "register_model"]
