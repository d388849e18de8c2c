"""Start TensorFlow without the C++ log lines it prints on stderr, for every command-line script.

Two kinds of lines, two remedies:

* while TensorFlow is imported and looks for GPUs, absl's "All log messages before absl::InitializeLog()"
  notice and INFO lines (oneDNN, CUDA stubs) go straight to file descriptor 2 before any log level is read:
  ``quiet_tensorflow()`` points descriptor 2 at a temporary file for the import and the device probe, then
  restores it (and shows what it caught if the import fails);
* afterwards, ``I0000 …`` / ``W0000 …`` lines of the TFLite converter, the SavedModel loader and the record
  reader obey ``TF_CPP_MIN_LOG_LEVEL``: it is set to 2 (errors only) before the import, unless the caller's
  environment sets it; 3 under ``TF_CONFIG``, where a dead peer's errors come once per aborted collective (and
  TensorFlow's Python logger shows only CRITICAL there: ParameterServerStrategy's coordinator logs every step a
  lost worker failed, which train.py names once).

It also hides TensorFlow's Python deprecation notices. ``TF_LOGS=1`` leaves all of it alone.
"""

import contextlib
import os
import sys
import tempfile
import warnings


@contextlib.contextmanager
def hidden_stderr():
    """Point file descriptor 2 at a temporary file for the block; show what it caught if the block fails.

    For C++ libraries that write to descriptor 2 directly: TensorFlow's start-up, LiteRT's "Created TensorFlow
    Lite XNNPACK delegate for CPU". ``TF_LOGS=1`` leaves it alone.
    """
    if os.environ.get("TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as hidden:
        os.dup2(hidden.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            hidden.seek(0)
            sys.stderr.write(hidden.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_tensorflow():
    """Import TensorFlow (and probe devices) with its C++ start-up chatter hidden; return the module."""
    if os.environ.get("TF_LOGS") == "1" or "tensorflow" in sys.modules:
        import tensorflow as tf
        return tf
    # read when TensorFlow logs, after start-up; on a cluster, errors too: a lost peer is logged by every
    # collective it aborts (three lines each) before train.py names it in one
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if os.environ.get("TF_CONFIG") else "2")
    with hidden_stderr():
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")
        # on a cluster, errors too: ParameterServerStrategy's coordinator logs each step a lost worker failed (three
        # lines each) while it runs them on the others, and train.py says which worker once
        tf.get_logger().setLevel("CRITICAL" if os.environ.get("TF_CONFIG") else "ERROR")
        # legacy/ uses tf.layers and slim on purpose: their deprecation notices are not news to its users
        warnings.filterwarnings("ignore", message=".*is deprecated", category=UserWarning)
        # tf.data's notice when a dataset's options are read while a function is traced (ParameterServerStrategy's
        # dataset function, modern.train.inputs): flowio's options are kept in the graph, as the notice says
        warnings.filterwarnings("ignore", message="To make it possible to preserve tf.data options",
                                category=UserWarning)
    return tf
