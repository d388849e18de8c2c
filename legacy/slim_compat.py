"""The one place that makes tf_slim 1.1.0 and ``tf.compat.v1.layers`` work on TensorFlow 2.21 (no twin in modern/).

Import ``slim`` from here, never ``tf_slim`` directly:

    from legacy.slim_compat import slim, tf

Two things are broken without it, both checked on TF 2.21 / tf_keras 2.21:

1. tf_slim 1.1.0 (its last release) builds ``slim.batch_norm`` on TensorFlow's ``tensorflow.python.layers``
   modules, which since TF 2.16 lazily load ``tf_keras.legacy_tf_layers.*``. tf_keras ships those modules at
   ``tf_keras.src.legacy_tf_layers``, so the first ``slim.batch_norm`` call raises ModuleNotFoundError. We
   register the real modules under the names TensorFlow asks for, before tf_slim is imported.
2. ``tf.compat.v1.layers.*`` (the article's head uses ``tf.compat.v1.layers.batch_normalization``) raises
   "not available with Keras 3" unless ``TF_USE_LEGACY_KERAS=1``. TensorFlow reads the variable when the
   layer is called, not when it is imported, so setting it here works even after ``import tensorflow``.
   It only selects Keras 2 for ``tf.keras``; ``modern/`` imports ``tf_keras`` explicitly either way.

Nothing here switches eager execution off: ``legacy/`` builds inside ``with tf.Graph().as_default()``.
It does give graph building TF1's tensor semantics back while it runs (``tf1_hashing``), for speed.
"""

import contextlib
import importlib
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

for _name in ("", ".base", ".convolutional", ".core", ".normalization", ".pooling", ".variable_scope_shim"):
    sys.modules.setdefault("tf_keras.legacy_tf_layers" + _name,
                           importlib.import_module("tf_keras.src.legacy_tf_layers" + _name))

import tensorflow.compat.v1 as tf  # noqa: E402
import tf_slim as slim  # noqa: E402
from tf_slim.nets import resnet_utils  # noqa: E402

__all__ = ["tf", "slim", "resnet_utils", "tf1_hashing"]


@contextlib.contextmanager
def tf1_hashing():
    """Tensors and variables compare by identity inside the block, as in TF1 (``tf.disable_tensor_equality``).

    Under TF2's default every ``Variable.__hash__`` first asks whether eager execution is on (a walk of
    context stacks), and tf_keras's legacy layers under ``slim.batch_norm`` / ``slim.conv2d`` put every global
    variable in a set each time they add one: building a graph costs time quadratic in its variable count.
    DenseNet-201's training and validation towers take 21 s instead of 6.5 s without this. Graph tensors are
    hashable either way; only the cost changes. The previous setting is restored on exit, so eager code in the
    same process (modern/, tests) keeps TF2's element-wise ``==``.
    """
    previous = tf.Tensor._USE_EQUALITY  # no public getter; the public setters follow
    tf.disable_tensor_equality()
    try:
        yield
    finally:
        if previous:
            tf.enable_tensor_equality()
