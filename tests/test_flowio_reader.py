"""flowio.reader: the tf.data pipeline, its graph-mode entry and the single-image preprocessing."""

import io

import numpy as np
import pytest
from PIL import Image

from core.errors import UserError
from helpers import pattern, run_script, save


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """3 classes x 10 images of different sizes and formats, converted: ``(data dir, records dir)``."""
    base = tmp_path_factory.mktemp("reader")
    data = base / "data"
    for c in range(3):
        for i in range(10):
            img = Image.fromarray(pattern(20 + 3 * i, 30 - i, 10 * c + i))
            save(data / f"class{c}" / f"{i}.{'jpg' if i % 2 else 'png'}", img, "JPEG" if i % 2 else "PNG")
    out = base / "records"
    proc = run_script("flowio.py", data, "--out", out, "--shards", 3, "--val-fraction", 0.3, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return data, out


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def numpy_bilinear(image, size):
    """Bilinear resampling with half-pixel centres, written from the definition (no TensorFlow)."""
    image = image.astype(np.float64)

    def axis(n_in):
        src = (np.arange(size) + 0.5) * n_in / size - 0.5
        lo = np.floor(src)
        frac = src - lo
        lo_i = np.clip(lo, 0, n_in - 1).astype(int)
        hi_i = np.clip(lo + 1, 0, n_in - 1).astype(int)
        return lo_i, hi_i, frac

    (y0, y1, fy), (x0, x1, fx) = axis(image.shape[0]), axis(image.shape[1])
    top = image[y0][:, x0] * (1 - fx)[None, :, None] + image[y0][:, x1] * fx[None, :, None]
    bottom = image[y1][:, x0] * (1 - fx)[None, :, None] + image[y1][:, x1] * fx[None, :, None]
    return (top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]) / 255.0


def test_jpeg_decode_matches_pillow_exactly_only_with_integer_accurate_dct():
    import tensorflow as tf
    from flowio.reader import decode
    buf = io.BytesIO()
    Image.fromarray(pattern(61, 97, 5)).save(buf, "JPEG", quality=85)  # 4:2:0 chroma subsampling
    pillow = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.array_equal(decode(tf.constant(buf.getvalue())).numpy(), pillow)
    default = tf.io.decode_jpeg(buf.getvalue(), channels=3).numpy()
    assert not np.array_equal(default, pillow)  # the setting matters: this guard fails if it did not


def test_validation_pipeline_is_the_pinned_preprocessing_of_each_source_file(records):
    import flowio
    data, out = records
    names = [r["filename"].decode() for r in flowio.raw_dataset(str(out), "validation").as_numpy_iterator()]
    images = np.concatenate([x for x, _ in batches(flowio.dataset(str(out), "validation", 16, 4))])
    labels = np.concatenate([y for _, y in batches(flowio.dataset(str(out), "validation", 16, 4))])
    assert len(names) == len(images) == flowio.num_examples(str(out), "validation") == 9
    singles = flowio.preprocess_files([data / n for n in names], 16)  # what use_model does
    for name, image, label, single in zip(names, images, labels, singles):
        assert image.shape == (16, 16, 3) and image.dtype == np.float32
        assert label == int(name[len("class")])
        np.testing.assert_array_equal(single, image)  # no train/serve skew
        reference = numpy_bilinear(np.asarray(Image.open(data / name).convert("RGB")), 16)
        np.testing.assert_allclose(image, reference, atol=2e-6)


def test_training_batches_are_seeded_augmented_and_differ_between_epochs(records):
    import flowio
    _, out = records
    steps = flowio.steps_per_epoch(str(out), "train", 8)
    assert steps == 3  # 21 training images
    run = lambda seed, flip=True: batches(flowio.dataset(  # noqa: E731
        str(out), "train", 16, 8, training=True, seed=seed, flip=flip, repeat=True).take(2 * steps))
    a, b, other = run(1), run(1), run(2)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert [len(y) for _, y in a] == [8, 8, 5, 8, 8, 5]  # epochs are batched apart
    epoch0, epoch1 = np.concatenate([y for _, y in a[:3]]), np.concatenate([y for _, y in a[3:]])
    assert sorted(epoch0) == sorted(epoch1) == sorted([0] * 7 + [1] * 7 + [2] * 7)
    assert not np.array_equal(epoch0, epoch1)  # reshuffled
    assert not all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, other))
    for x, _ in a:
        assert x.shape[1:] == (16, 16, 3) and 0 <= x.min() and x.max() <= 1
    # flip=False gives the same crops: each flipped image is its unflipped twin or that twin mirrored
    unflipped = run(1, flip=False)
    mirrored = same = 0
    for (x, _), (u, _) in zip(a, unflipped):
        for xi, ui in zip(x, u):
            same += np.array_equal(xi, ui)
            mirrored += np.array_equal(xi, ui[:, ::-1]) and not np.array_equal(xi, ui)
    assert same + mirrored == 2 * 21 and same > 0 and mirrored > 0


def test_graph_input_runs_in_an_explicit_graph_and_yields_the_eager_batches(records):
    import tensorflow as tf
    import flowio
    _, out = records
    graph = tf.Graph()
    images, labels = flowio.graph_input(graph, str(out), "train", 16, 8, training=True, seed=3)
    assert images.graph is graph
    with tf.compat.v1.Session(graph=graph) as sess:
        from_graph = [sess.run([images, labels]) for _ in range(4)]
    eager = batches(flowio.dataset(str(out), "train", 16, 8, training=True, seed=3, repeat=True).take(4))
    for (gx, gy), (ex, ey) in zip(from_graph, eager):
        np.testing.assert_array_equal(gx, ex)
        np.testing.assert_array_equal(gy, ey)
    assert tf.executing_eagerly()  # nothing global was switched off


def test_missing_records_are_a_user_error(records, tmp_path):
    import flowio
    _, out = records
    with pytest.raises(UserError, match="no manifest.json"):
        flowio.dataset(str(tmp_path), "train", 16, 4)
    with pytest.raises(UserError, match="no such folder"):
        flowio.dataset(str(tmp_path / "nope"), "train", 16, 4)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in out.iterdir():
        if f.name != "train-00001-of-00003.tfrecord" and f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    with pytest.raises(UserError, match="train-00001-of-00003.tfrecord: shard listed in the manifest is missing"):
        flowio.dataset(str(broken), "train", 16, 4)
    with pytest.raises(UserError, match="no such file"):
        flowio.load_image(str(tmp_path / "none.jpg"))
    (tmp_path / "text.jpg").write_text("no")
    with pytest.raises(UserError, match="not an image"):
        flowio.load_image(str(tmp_path / "text.jpg"))
    assert flowio.read_labels(str(out)) == ["class0", "class1", "class2"]


def test_every_pipeline_runs_without_tf_datas_autotuning_thread(records):
    """With it, a Keras fit / evaluate / predict returns only when that thread next wakes (10 ms, 20, 40, ...
    up to 60 s after the iterator was made; bench/flowio_bench.py measures the wait): flowio.reader.NO_AUTOTUNE_THREAD."""
    import tensorflow as tf

    import flowio
    _, out = records
    for training, repeat in ((True, True), (False, False), (False, True)):
        ds = flowio.dataset(str(out), "train", 16, 4, training=training, repeat=repeat)
        assert ds.options().autotune.enabled is False
    assert tf.data.Dataset.range(1).options().autotune.enabled is not False  # TensorFlow's default: on
