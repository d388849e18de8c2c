"""Keras 3's backend for a command: ``--keras-backend {tensorflow,jax}``.

Keras 3 reads ``KERAS_BACKEND`` once, when it is first imported. ``import tensorflow`` imports it too (TensorFlow
2.21's ``tf.keras`` is Keras 3) unless ``TF_USE_LEGACY_KERAS=1``, which every command sets (cli/__init__.py):
there the backend is fixed by the first ``import keras``, keras3/'s. ``choose(backend)`` sets the variable, and
refuses with one line where Keras is already loaded on another backend (a library that imported it before the
command parsed its arguments, or a test process). It imports nothing: the commands call it before they import
TensorFlow.
"""

import os
import sys

from core.errors import UserError

BACKENDS = ("tensorflow", "jax")


def loaded():
    """The backend Keras 3 runs on in this process, or None when Keras is not imported yet."""
    module = sys.modules.get("keras.src.backend")
    return None if module is None else module.backend()


HELP = ("keras3: the backend Keras 3 runs on (default: the KERAS_BACKEND variable, else Keras's own,"
        " tensorflow)")


def choose(backend, impl="keras3"):
    """Run Keras 3 on ``backend`` in this process (``None``: leave ``KERAS_BACKEND`` as it is), for a command on
    the half ``impl``: only keras3 has a Keras backend to choose."""
    if backend is None:
        return
    if impl != "keras3":
        raise UserError(f"--keras-backend is the keras3 half's; a {impl} run runs on TensorFlow")
    if backend not in BACKENDS:
        raise UserError(f"--keras-backend {backend}: one of {', '.join(BACKENDS)}")
    running = loaded()
    if running is not None and running != backend:
        raise UserError(f"--keras-backend {backend}: Keras is already loaded on {running} in this process (the"
                        " backend is fixed when TensorFlow or Keras is first imported); start a new process")
    os.environ["KERAS_BACKEND"] = backend
