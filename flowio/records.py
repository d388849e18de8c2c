"""The bytes of a TFRecord file of ``tf.train.Example`` protos, written without importing TensorFlow.

Conversion runs in worker processes that should not pay TensorFlow's 4 s / 600 MiB import, so this
module encodes the two formats by hand:

* ``example_bytes`` gives what ``tf.train.Example(...).SerializeToString(deterministic=True)`` gives
  (protobuf wire format; ``deterministic`` sorts the feature map by key);
* ``frame`` wraps a record the way ``tf.io.TFRecordWriter`` does (length, masked CRC-32C of the
  length, data, masked CRC-32C of the data).

tests/test_records.py checks both against TensorFlow's own classes byte for byte.
"""

import functools
import struct

import google_crc32c


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def _varint(value):
    if 0 <= value < 128:
        return _ONE_BYTE[value]
    value &= 0xFFFFFFFFFFFFFFFF  # int64 on the wire: negatives take ten bytes, as protobuf does
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number, payload):
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value):
    """A ``tf.train.Feature``: bytes_list (field 1) for bytes/str, int64_list (field 3) for ints."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if all(isinstance(v, int) for v in values):
        packed = b"".join(_varint(v) for v in values)
        return _field(3, _field(1, packed) if packed else b"")  # protobuf omits an empty packed field
    encoded = [v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v) for v in values]
    return _field(1, b"".join(_field(1, v) for v in encoded))


@functools.lru_cache(maxsize=256)
def _key(key):
    return _field(1, key.encode("utf-8"))


def example_bytes(features):
    """Serialize ``{key: bytes | str | int | list of one kind}`` as a deterministic ``tf.train.Example``."""
    entries = b"".join(_field(1, _key(key) + _field(2, _feature(features[key]))) for key in sorted(features))
    return _field(1, entries)


def _masked_crc(data):
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record):
    """One record as it lies in a TFRecord file."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", _masked_crc(length)) + record + struct.pack("<I", _masked_crc(record))


def first_problem(path):
    """Where the TFRecord file ``path`` stops being well formed: ``None``, or ``(offset, what)``.

    TensorFlow's reader says "corrupted record at <offset>" without naming the file, and takes a file cut
    short between two records as a shorter file. This walks the frames and checks both CRCs, so the
    reader can name the shard (``flowio.reader.records_errors``).
    """
    with open(path, "rb") as f:
        offset = 0
        while True:
            header = f.read(12)
            if not header:
                return None
            if len(header) < 12:
                return offset, "the file ends inside a record's header (truncated)"
            length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
            if _masked_crc(length_bytes) != length_crc:
                return offset, "a record's length fails its CRC (flipped bytes, or not a TFRecord file)"
            length = struct.unpack("<Q", length_bytes)[0]
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                return offset, "the file ends inside a record (truncated)"
            if _masked_crc(data) != struct.unpack("<I", footer)[0]:
                return offset, "a record's data fails its CRC (flipped bytes)"
            offset += 16 + length
