"""Decoding one image file with Pillow, and deciding which bytes a record keeps.

The rules pinned in docs/DESIGN.md §4:

* a file is accepted when Pillow decodes it completely and its format is one of ``FORMATS``; animated GIF
  and WebP give their first frame;
* every accepted image becomes 8-bit RGB: the EXIF orientation is applied (TensorFlow's decoders ignore
  it), 16-bit samples are scaled to 8 bits (Pillow's own conversion would clip them), grayscale, palette,
  RGBA (alpha dropped), CMYK and the rest go through Pillow's ``convert("RGB")``;
* the record keeps the original bytes only where TensorFlow's decoder gives exactly those pixels: an 8-bit
  RGB or grayscale baseline JPEG or PNG with no EXIF rotation, whose structure is intact (for PNG: no
  transparency chunk and every chunk's CRC right). Everything else — progressive JPEGs included — is stored as
  PNG re-encoded from the RGB pixels.

``to_rgb`` is the one conversion used both by flowio and by ``use_model`` (through ``decode_rgb``), so
training and prediction see the same pixels.
"""

import io
import os
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from core.errors import UserError

FORMATS = ("JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP", "TIFF")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY, _PNG_RGB = 0, 2  # IHDR colour types whose 8-bit samples TensorFlow decodes as Pillow does


class Skip(Exception):
    """The file is not a usable image; the message is the reason recorded in the manifest."""


@dataclass(frozen=True)
class Checked:
    encoded: bytes  # what goes into image/encoded
    format: str  # "jpeg" or "png"
    height: int
    width: int
    kept_original: bool


def _orientation(img):
    return img.getexif().get(ExifTags.Base.Orientation, 1)


def to_rgb(img):
    """A loaded Pillow image as an 8-bit RGB image, orientation applied (a new image or ``img`` itself)."""
    if _orientation(img) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        samples = np.asarray(img, dtype=np.int64)
        img = Image.fromarray((np.clip(samples, 0, 65535) >> 8).astype(np.uint8))
    if img.mode != "RGB":
        with warnings.catch_warnings():  # "palette images with transparency ... should be RGBA": intended
            warnings.simplefilter("ignore", UserWarning)
            img = img.convert("RGB")
    return img


def _open(data):
    """Open and fully decode ``data`` (first frame), or raise Skip with the reason."""
    if not data:
        raise Skip("empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
            if img.format not in FORMATS:
                raise Skip(f"unsupported image format {img.format}")
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise Skip(f"decompression bomb: {err}") from None
        except UnidentifiedImageError:
            raise Skip("not an image (Pillow cannot identify it)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise Skip(f"corrupt or truncated image: {err}") from None
    return img


def _png_chunks_intact(data):
    """Whether every chunk of a PNG file has its CRC right and the file ends at IEND.

    Pillow does not check the CRCs of the image data (IDAT) and ignores what follows IEND; libpng, TensorFlow's
    decoder, rejects such a file ("Invalid PNG data"). Found by tests/test_faults.py's fuzz pass.
    """
    at = len(_PNG_SIGNATURE)
    while at + 12 <= len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        end = at + 12 + length
        if end > len(data) or zlib.crc32(data[at + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            return False
        if data[at + 4:at + 8] == b"IEND":
            return end == len(data)
        at = end
    return False


# Markers a baseline JPEG may hold between SOI and EOI: SOF0/1, DHT, DQT, DRI, SOS, DNL, APPn, COM.
_JPEG_MARKERS = {0xC0, 0xC1, 0xC4, 0xDB, 0xDD, 0xDA, 0xDC, 0xFE, *range(0xE0, 0xF0)}


def _jpeg_intact(data):
    """Whether a JPEG file is a well-formed baseline JPEG: known segments with sane lengths, entropy-coded data
    whose 0xFF bytes are all stuffed or restart markers in order, nothing after EOI.

    Pillow and TensorFlow both decode with libjpeg-turbo, but not the same release: on damaged data they
    recover differently (seen: 4-level differences and outright refusals), and in progressive JPEGs damage
    cannot be found without decoding, so those are not kept either. Found by tests/test_faults.py's fuzz pass.
    """
    n = len(data)
    if not data.startswith(b"\xff\xd8"):
        return False
    at = 2
    while at + 2 <= n:
        if data[at] != 0xFF:
            return False
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == 0xD9:
            return at + 2 == n
        if marker not in _JPEG_MARKERS or at + 4 > n:
            return False
        end = at + 2 + int.from_bytes(data[at + 2:at + 4], "big")
        if end > n or end < at + 4:
            return False
        at = end
        if marker != 0xDA:
            continue
        restart = 0
        while True:  # the scan's entropy-coded data, up to the next marker
            j = data.find(b"\xff", at)
            if j < 0 or j + 1 >= n:
                return False
            following = data[j + 1]
            if following == 0x00:
                at = j + 2
            elif 0xD0 <= following <= 0xD7:
                if following != 0xD0 + restart:
                    return False
                restart = (restart + 1) % 8
                at = j + 2
            elif following == 0xFF:  # fill bytes: only before a marker, never before a stuffed zero
                k = j + 1
                while k < n and data[k] == 0xFF:
                    k += 1
                if k >= n or data[k] == 0x00:
                    return False
                at = k - 1
            else:
                at = j
                break
    return False


def _keeps_original(data, img):
    if _orientation(img) != 1:
        return False
    if img.format == "JPEG":
        return img.mode in ("RGB", "L") and _jpeg_intact(data)
    if img.format == "PNG":
        bit_depth, colour_type = data[24], data[25]  # IHDR follows the 8-byte signature and 8-byte chunk head
        return (data.startswith(_PNG_SIGNATURE) and bit_depth == 8 and colour_type in (_PNG_GRAY, _PNG_RGB)
                and "transparency" not in img.info and _png_chunks_intact(data))
    return False


def check(data):
    """Decode the bytes of one file; return what its record holds, or raise Skip."""
    img = _open(data)
    if _keeps_original(data, img):
        return Checked(data, img.format.lower(), img.height, img.width, kept_original=True)
    rgb = to_rgb(img)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", compress_level=1)
    return Checked(buf.getvalue(), "png", rgb.height, rgb.width, kept_original=False)


def decode_rgb(path):
    """The file at ``path`` as a uint8 ``[H, W, 3]`` array, by the same rules as conversion.

    Raises Skip (with the reason) when the file is not a usable image.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise Skip(f"cannot read: {err.strerror}") from None
    return np.asarray(to_rgb(_open(data)))


def load_image(path):
    """One image file as uint8 ``[H, W, 3]`` by these rules; a UserError when it is missing or not an image.

    What use_model feeds either backend (``flowio.load_image``), so both see the pixels training saw.
    """
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    try:
        return decode_rgb(path)
    except Skip as err:
        raise UserError(f"{path}: {err}") from None
