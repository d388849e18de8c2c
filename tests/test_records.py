"""flowio's hand-written record bytes against TensorFlow's own Example and TFRecordWriter."""

import pytest

from flowio.records import example_bytes, frame

CASES = [
    {"image/encoded": b"\xff\xd8 jpeg bytes \x00\x01", "image/format": "jpeg", "image/class/label": 0,
     "image/class/text": "cat s", "image/height": 1, "image/width": 300, "image/channels": 3,
     "image/filename": "cat s/图片 1.jpg"},
    {"image/class/label": 2**40 + 5, "z": [1, 127, 128, 300], "a": [b"", b"x" * 200], "neg": -3,
     "image/encoded": bytes(range(256)) * 600},
    {"empty ints": [], "one": [0]},
]


def tf_example(features):
    import tensorflow as tf

    def feature(value):
        values = value if isinstance(value, list) else [value]
        if all(isinstance(v, int) for v in values):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[v.encode() if isinstance(v, str) else v for v in values]))
    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()}))


@pytest.mark.parametrize("features", CASES)
def test_example_bytes_equal_tensorflows_deterministic_serialization(features):
    assert example_bytes(features) == tf_example(features).SerializeToString(deterministic=True)


def test_framed_records_equal_tfrecordwriter_output_and_read_back(tmp_path):
    import tensorflow as tf
    records = [example_bytes(f) for f in CASES] + [b"", b"x" * 70000]
    ours = tmp_path / "ours.tfrecord"
    ours.write_bytes(b"".join(frame(r) for r in records))
    theirs = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(theirs)) as w:
        for r in records:
            w.write(r)
    assert ours.read_bytes() == theirs.read_bytes()
    assert list(tf.data.TFRecordDataset(str(ours)).as_numpy_iterator()) == records
