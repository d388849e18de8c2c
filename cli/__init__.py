"""The command lines (docs/DESIGN.md §6): one module per command, each ``main(argv)`` parsing its arguments and
calling the packages, ``run()`` its entry point. ``scripts/<name>.py`` runs ``cli.<name>`` from a checkout, and
setup.cfg installs the user-facing ones as console commands. A ``main`` imports nothing that imports TensorFlow
before it has parsed its arguments (``--help`` answers at once, and a half's backend can be chosen first).

TensorFlow 2.21's ``import tensorflow`` loads a Keras eagerly: Keras 3 (``keras.src.optimizers``), whose import
brings scikit-learn, matplotlib, SciPy and JAX when they are installed, unless ``TF_USE_LEGACY_KERAS=1`` makes it
load tf_keras's instead (tensorflow/__init__.py). The legacy and modern halves run on tf_keras (legacy's
``tf.compat.v1.layers`` need it, see legacy/slim_compat.py), so every command sets it before anything imports
TensorFlow: ``import tensorflow`` takes 8.0 s instead of 10.0 s on a 2-core AVX2 CPU (``/usr/bin/time python -c
"import tensorflow"`` with and without it). Keras 3 is still there for the keras3 half, which imports ``keras``
itself; its backend is then fixed when that import happens (core/keras_backend.py). A caller's own setting wins."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
