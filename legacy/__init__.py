"""legacy: the TF1 half — ``tf.compat.v1`` graph mode and tf_slim (twin: ``modern/``).

    import legacy
    with tf.Graph().as_default():
        logits, end_points = legacy.build("jianshu_resnet_50", images, num_classes=10)

Everything is built inside explicit graphs and run in ``tf.compat.v1.Session(graph=...)``; nothing here
disables eager execution, so both halves live in one process. tf_slim comes through
``legacy.slim_compat`` (see there why).
"""

from legacy import (cnn, densenet, inception, resnet, resnets_keras,  # noqa: F401  (they register their models)
                    slim_convnets)
from legacy.registry import build, default_input_size, list_models, register_model

__all__ = ["build", "default_input_size", "list_models", "register_model"]
