"""flowio: a folder of class folders -> sharded TFRecords, and the one reader both halves use.

* ``flowio.convert``: the conversion (``scripts/flowio.py``); imports no TensorFlow, so its worker
  processes start in a fraction of a second.
* ``flowio.reader``: the ``tf.data`` pipeline (``dataset``), its graph-mode entry for ``legacy/``
  (``graph_input``), the pinned preprocessing for single images (``load_image``, ``preprocess``) and labelled
  batches of records or of a folder for evaluation (``labelled_batches``).
* ``flowio.images``: decoding with Pillow (the checks, and the pixels TensorFlow's decoders must equal).
* ``flowio.records``: the bytes of one record (the tf_slim schema) and of a TFRecord frame.

That is all of it: the run directory, checkpoints, the model table and the other machinery both halves share
are ``core``'s. The names of ``flowio.reader`` are re-exported here lazily, so ``import flowio`` stays
TensorFlow-free.
"""

from flowio.convert import convert

_READER = ("dataset", "graph_input", "raw_dataset", "preprocess", "augment", "decode", "load_image",
           "preprocess_files", "preprocessing_spec", "read_manifest", "trainable_manifest", "read_labels",
           "num_examples", "steps_per_epoch", "epoch_steps", "records_errors", "labelled_batches", "recipe_of")

__all__ = ["convert", *_READER]


def __getattr__(name):
    if name in _READER:
        from flowio import reader
        return getattr(reader, name)
    raise AttributeError(f"module 'flowio' has no attribute {name!r}")
