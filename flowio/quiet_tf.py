"""Import TensorFlow without the screenful it prints on stderr, for the command-line scripts.

TF 2.21 writes absl's "All log messages before absl::InitializeLog()" notice and INFO lines (oneDNN, CUDA
stubs) straight to file descriptor 2 while it is imported and while it looks for GPUs;
``TF_CPP_MIN_LOG_LEVEL`` no longer silences them. The scripts promise one clear line on an error, so they
call ``quiet_tensorflow()`` first: it points descriptor 2 at /dev/null for the import and the device
probe, then restores it (and shows what was hidden if the import fails); it also hides TensorFlow's
Python deprecation notices. Set ``TF_LOGS=1`` to see it all.
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
    with hidden_stderr():
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")
        tf.get_logger().setLevel("ERROR")
        # legacy/ uses tf.layers and slim on purpose: their deprecation notices are not news to its users
        warnings.filterwarnings("ignore", message=".*is deprecated", category=UserWarning)
    return tf
