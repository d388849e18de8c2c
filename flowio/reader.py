"""The one reader of flowio's records, used by both halves, and the same preprocessing for single images.

* ``dataset``: the ``tf.data`` pipeline for ``modern/`` (``model.fit``) — list shards, interleave, shuffle,
  parse, decode, resize / augment, batch, prefetch.
* ``graph_input``: the same pipeline as ``(images, labels)`` tensors inside a given ``tf.Graph``, for
  ``legacy/``. It replaces the article's queue runners (``tf.train.string_input_producer`` +
  ``tf.TFRecordReader`` + ``tf.train.shuffle_batch`` + ``tf.train.start_queue_runners``), which TF 2 dropped.
* ``preprocess`` / ``load_image``: the pinned preprocessing of docs/DESIGN.md §4 for one image or a batch, which
  ``use_model`` applies to files, so training and prediction see the same numbers.

Decoding: JPEG with ``dct_method="INTEGER_ACCURATE"`` (the default DCT differs from Pillow by up to 10 levels;
this one matches it exactly), PNG as is; both to 3 channels. Then the run's recipe (``run.json``'s
``preprocessing``; a model's default is ``core.models``' table): ``default``, ``inception`` or ``vgg``, each one
module of ``flowio.recipes`` that states exactly what it does. ``augment`` shares the random S×S crop and flip
between them. What a run does is what its ``run.json`` recorded (``preprocessing_spec``), not what this version
would choose: every function here that preprocesses takes a run's ``preprocessing`` record where it takes a
recipe's name.

"""

import contextlib
import json
import os

import numpy as np
import tensorflow as tf

from flowio import recipes
from flowio.convert import LABELS, MANIFEST, SPLITS
from core import files
from core.errors import UserError
from flowio.images import load_image  # noqa: F401 -- flowio.load_image, with preprocess
from flowio.records import first_problem

SHUFFLE_BUFFER = 2048
READ_BUFFER = 256 * 1024  # bytes per open shard (TensorFlow's default, said explicitly: it logs otherwise)
_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    "image/filename": tf.io.FixedLenFeature([], tf.string, default_value=""),
}

preprocessing_spec = recipes.spec  # what run.json records under ``preprocessing``
recipe_of = recipes.name_of


# --- the records folder -------------------------------------------------------------------------------

def read_manifest(records_dir):
    """The manifest of a finished flowio output, or a UserError saying what is wrong."""
    path = os.path.join(records_dir, MANIFEST)
    if not os.path.isdir(records_dir):
        raise UserError(f"{records_dir}: no such folder; make records with scripts/flowio.py first")
    if not os.path.exists(path):
        raise UserError(f"{records_dir}: no {MANIFEST} (not flowio output, or an unfinished run);"
                        " run scripts/flowio.py to make it")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def trainable_manifest(records_dir, batch_size):
    """The manifest of records that train.py can train on at ``batch_size`` (a full batch of training images,
    and validation images), or a UserError saying what is missing."""
    manifest = read_manifest(records_dir)
    if manifest["num_examples"]["train"] < batch_size:
        raise UserError(f"--batch-size {batch_size}: larger than the {manifest['num_examples']['train']}"
                        " training images")
    if manifest["num_examples"]["validation"] == 0:
        raise UserError(f"{records_dir}: no validation images; rerun flowio.py with --val-fraction above 0")
    return manifest


def shard_paths(records_dir, split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    manifest = read_manifest(records_dir)
    names = manifest["shards"][split]
    if not names:
        raise UserError(f"{records_dir}: the {split} split is empty (made with --val-fraction 0?)")
    paths = [os.path.join(records_dir, n) for n in names]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UserError(f"{missing[0]}: shard listed in the manifest is missing; rerun scripts/flowio.py")
    sizes = manifest.get("shard_bytes", {})  # absent in records of flowio before hardening
    for name, path in zip(names, paths):
        if name in sizes and os.path.getsize(path) != sizes[name]:
            raise UserError(f"{path}: {os.path.getsize(path)} bytes where flowio wrote {sizes[name]} (truncated or"
                            " changed since); rerun scripts/flowio.py")
    return paths


@contextlib.contextmanager
def records_errors(records_dir):
    """Turn TensorFlow's "corrupted record at N", which names no file, into a UserError naming the shard.

    Wrap whatever iterates ``dataset`` / ``graph_input`` (training, evaluation): on a ``DataLossError`` the
    shards are checked record by record (``flowio.records.first_problem``) to find the damaged one.
    """
    try:
        yield
    except tf.errors.DataLossError as err:
        manifest = read_manifest(records_dir)
        for name in [n for split in SPLITS for n in manifest["shards"][split]]:
            problem = first_problem(os.path.join(records_dir, name))
            if problem:
                raise UserError(f"{os.path.join(records_dir, name)}: damaged record at byte {problem[0]}:"
                                f" {problem[1]}; rerun scripts/flowio.py to write the records again") from None
        raise UserError(f"{records_dir}: TensorFlow could not read the records ({err.message.splitlines()[0]});"
                        " rerun scripts/flowio.py to write them again") from None


def num_examples(records_dir, split):
    return read_manifest(records_dir)["num_examples"][split]


def read_labels(records_dir):
    """Class names by id, from ``labels.txt`` (``id:name`` per line, ``core.files``)."""
    return files.read_labels(os.path.join(records_dir, LABELS))


# --- decode and preprocess (shared by the pipeline and single images) ---------------------------------

def decode(encoded):
    """``image/encoded`` bytes (JPEG or PNG) -> uint8 ``[H, W, 3]``."""
    image = tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_png(encoded, channels=3),
    )
    image.set_shape([None, None, 3])
    return image


def preprocess(images, image_size, recipe="default"):
    """uint8 (or float 0..255) ``[H, W, 3]`` or ``[N, H, W, 3]`` -> float32 ``[(N,) S, S, 3]`` by ``recipe``: a
    run's ``preprocessing`` record, or a recipe's name (as a new run would record it)."""
    record = recipes.record(recipe, image_size)
    return recipes.of(record).evaluate(tf.cast(images, tf.float32), image_size, record)


def augment(image, image_size, seed, flip=True, recipe="default"):
    """Training preprocessing of one uint8 image by ``recipe`` (a record or a name, as ``preprocess``): the
    recipe's resize, a random S×S crop, a random flip, the recipe's scaling; ``seed`` is a stateless seed
    (shape [2])."""
    record = recipes.record(recipe, image_size)
    this = recipes.of(record)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    image = this.train_resize(tf.cast(image, tf.float32), image_size, record, seed)
    image = tf.image.stateless_random_crop(image, [image_size, image_size, 3], seed=crop_seed)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return this.scale(image)


# --- the pipeline -------------------------------------------------------------------------------------

def _parse(serialized):
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    return parsed["image/encoded"], parsed["image/class/label"], parsed["image/filename"]


def _records(paths, shuffle_seed=None):
    """The serialized records of ``paths``, interleaved; the file order shuffled by a stateless seed."""
    files = tf.constant(paths)
    if shuffle_seed is not None:
        files = tf.random.experimental.stateless_shuffle(files, seed=shuffle_seed)
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda path: tf.data.TFRecordDataset(path, buffer_size=READ_BUFFER), cycle_length=min(len(paths), 4),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _window_shuffle(records, window, seed):
    """Shuffle each run of ``window`` records with its own stateless seed.

    ``Dataset.shuffle`` takes its seed through the global-seed machinery, which rejects a per-epoch tensor
    seed once a global seed is set (as ``keras.utils.set_random_seed`` does); flowio already wrote the
    records to the shards in random order, so shuffling windows of them is enough.
    """
    def shuffle(index, chunk):
        return tf.random.experimental.stateless_shuffle(chunk, seed=tf.random.experimental.stateless_fold_in(seed, index))
    return records.batch(window).enumerate().map(shuffle).unbatch()


def raw_dataset(records_dir, split):
    """Undecoded order of the shards, each element ``{"image": uint8 [H, W, 3], "label", "filename"}``."""
    def to_dict(encoded, label, filename):
        return {"image": decode(encoded), "label": label, "filename": filename}
    return _records(shard_paths(records_dir, split)).map(lambda s: to_dict(*_parse(s)))


def dataset(records_dir, split, image_size, batch_size, training=False, flip=True, seed=0,
            repeat=False, drop_remainder=False, initial_step=0, recipe="default"):
    """Batches of ``(images float32 [B, S, S, 3], labels int64 [B])``.

    ``training`` shuffles and augments; otherwise images are only resized, in the shards' order.
    ``repeat`` gives epochs 0, 1, 2, ... back to back, each batched on its own (an epoch never shares a
    batch with the next), so epoch ``e`` has ``ceil(n / B)`` batches, or ``floor`` with ``drop_remainder``.
    ``initial_step`` (with ``repeat``) starts at that global batch number: what a resumed run needs, so
    that it sees exactly the batches an uninterrupted run would have seen from there on. ``recipe``: the run's
    ``preprocessing`` record, or a recipe's name (``preprocess``). ``seed``: an int, or an integer scalar tensor.
    """
    paths = shard_paths(records_dir, split)
    shuffle_buffer = min(SHUFFLE_BUFFER, num_examples(records_dir, split))

    def one_epoch(epoch):
        if not training:
            records = _records(paths)
            images = records.map(lambda s: _parse(s)[:2], num_parallel_calls=tf.data.AUTOTUNE)
            images = images.map(lambda e, label: (preprocess(decode(e), image_size, recipe), label),
                                num_parallel_calls=tf.data.AUTOTUNE)
        else:
            epoch_seed = tf.stack([tf.cast(seed, tf.int64), epoch])
            file_seed, window_seed, image_seed = tf.unstack(tf.random.experimental.stateless_split(epoch_seed, 3))
            records = _window_shuffle(_records(paths, file_seed), shuffle_buffer, window_seed)

            def train_map(position, serialized):
                encoded, label, _ = _parse(serialized)
                this_seed = tf.random.experimental.stateless_fold_in(image_seed, position)
                return augment(decode(encoded), image_size, this_seed, flip, recipe), label

            images = records.enumerate().map(train_map, num_parallel_calls=tf.data.AUTOTUNE)
        return images.batch(batch_size, drop_remainder=drop_remainder)

    if repeat:
        per_epoch = steps_per_epoch(records_dir, split, batch_size, drop_remainder)
        first_epoch, skip = divmod(initial_step, per_epoch)
        ds = tf.data.Dataset.counter(start=first_epoch, dtype=tf.int64).flat_map(one_epoch).skip(skip)
    else:
        ds = one_epoch(tf.constant(0, tf.int64))
    return ds.prefetch(tf.data.AUTOTUNE).with_options(NO_AUTOTUNE_THREAD)


def _no_autotune_thread():
    """tf.data options without the autotuning thread.

    In TF 2.21 an iterator whose pipeline autotunes is deleted only when that thread wakes, and it sleeps 10 ms,
    then 20, 40, ... up to 60 s: so a Keras ``fit``, ``evaluate`` or ``predict``, which deletes its iterator at
    the end, returns at the next of those moments after the work is done (measured: fit of 40 steps 10.26 s
    against 5.61 s, every modern epoch's validation up to twice as long). Without it, ``AUTOTUNE`` parallelism
    is the number of cores and ``prefetch(AUTOTUNE)`` still sizes its own buffer; the reader is as fast here.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


NO_AUTOTUNE_THREAD = _no_autotune_thread()


def graph_input(graph, records_dir, split, image_size, batch_size, training=False, flip=True, seed=0,
                drop_remainder=False, initial_step=0, recipe="default"):
    """``(images, labels)`` tensors in ``graph`` that yield the next batch each time they are run.

    The epochs repeat without end (epoch-aligned batches, as ``dataset(repeat=True)``): run
    ``steps_per_epoch(...)`` batches for one epoch. This is what the article's queue runners did.
    """
    with graph.as_default():
        ds = dataset(records_dir, split, image_size, batch_size, training=training, flip=flip, seed=seed,
                     repeat=True, drop_remainder=drop_remainder, initial_step=initial_step, recipe=recipe)
        images, labels = tf.compat.v1.data.make_one_shot_iterator(ds).get_next()
    return images, labels


def steps_per_epoch(records_dir, split, batch_size, drop_remainder=False):
    n = num_examples(records_dir, split)
    return n // batch_size if drop_remainder else -(-n // batch_size)


def epoch_steps(records_dir, batch_size):
    """``(training steps, validation steps)`` of an epoch: whole training batches only, every validation image."""
    return (steps_per_epoch(records_dir, "train", batch_size, drop_remainder=True),
            steps_per_epoch(records_dir, "validation", batch_size))


def preprocess_files(paths, image_size, recipe="default"):
    """Files -> float32 ``[N, S, S, 3]``, as the validation pipeline would give them (for use_model)."""
    return np.stack([preprocess(load_image(p), image_size, recipe).numpy() for p in paths])


# --- labelled batches for evaluation ------------------------------------------------------------------

def labelled_batches(data, labels, image_size, batch_size=64, recipe="default"):
    """``(images float32 [N, S, S, 3], label ids [N])`` batches of ``data`` with the ids of ``labels``.

    ``data`` is flowio output (its validation split) or a plain folder of class folders. What can be checked
    before reading (the records' labels, the class folders' names) is checked now, as a UserError; a damaged
    record fails while the batches are read, naming its shard.
    """
    if not os.path.isdir(data):
        raise UserError(f"--data {data}: no such folder")
    if os.path.exists(os.path.join(data, MANIFEST)):
        found = read_labels(data)
        if found != labels:
            raise UserError(f"{data}: its labels ({', '.join(found)}) are not the run's ({', '.join(labels)})")
        return _record_batches(data, image_size, batch_size, recipe)
    from flowio.convert import scan
    classes, files, _ = scan(data)
    unknown = [c for c in classes if c not in labels]
    if unknown:
        raise UserError(f"{data}: class folder(s) {', '.join(map(repr, unknown))} are not among the run's"
                        f" labels ({', '.join(labels)})")
    ids = [labels.index(classes[label]) for _, label in files]
    paths = [os.path.join(data, rel) for rel, _ in files]
    return ((preprocess_files(paths[i:i + batch_size], image_size, recipe), np.array(ids[i:i + batch_size]))
            for i in range(0, len(paths), batch_size))


def _record_batches(records_dir, image_size, batch_size, recipe):
    with records_errors(records_dir):
        for images, ids in dataset(records_dir, "validation", image_size, batch_size, recipe=recipe):
            yield images.numpy(), ids.numpy()
