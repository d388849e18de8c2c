"""flowio: a folder of class folders -> sharded TFRecords, and the one reader both halves use.

* ``flowio.convert``: the conversion (``scripts/flowio.py``); imports no TensorFlow, so its worker
  processes start in a fraction of a second.
* ``flowio.reader``: the ``tf.data`` pipeline (``dataset``), its graph-mode entry for ``legacy/``
  (``graph_input``) and the pinned preprocessing for single images (``load_image``, ``preprocess``).
* ``flowio.images`` / ``flowio.records``: decoding with Pillow, and the record bytes.
* ``flowio.errors``: ``UserError`` and ``run_cli``, the one-line-and-exit-2 contract of every script.

The names of ``flowio.reader`` are re-exported here lazily, so ``import flowio`` stays TensorFlow-free.
"""

from flowio.convert import convert
from flowio.errors import UserError

_READER = ("dataset", "graph_input", "raw_dataset", "preprocess", "augment", "decode", "load_image",
           "preprocess_files", "preprocessing_spec", "read_manifest", "read_labels", "num_examples",
           "steps_per_epoch")

__all__ = ["convert", "UserError", *_READER]


def __getattr__(name):
    if name in _READER:
        from flowio import reader
        return getattr(reader, name)
    raise AttributeError(f"module 'flowio' has no attribute {name!r}")
