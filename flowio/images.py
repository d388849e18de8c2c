"""Decoding one image file with Pillow, and deciding which bytes a record keeps.

The rules pinned in DESIGN §4:

* a file is accepted when Pillow decodes it completely and its format is one of ``FORMATS``; animated GIF
  and WebP give their first frame;
* every accepted image becomes 8-bit RGB: the EXIF orientation is applied (TensorFlow's decoders ignore
  it), 16-bit samples are scaled to 8 bits (Pillow's own conversion would clip them), grayscale, palette,
  RGBA (alpha dropped), CMYK and the rest go through Pillow's ``convert("RGB")``;
* the record keeps the original bytes only where TensorFlow's decoder gives exactly those pixels: an 8-bit
  RGB or grayscale JPEG or PNG with no EXIF rotation (and, for PNG, no transparency chunk). Everything
  else is stored as PNG re-encoded from the RGB pixels.

``to_rgb`` is the one conversion used both by flowio and by ``use_model`` (through ``decode_rgb``), so
training and prediction see the same pixels.
"""

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

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


def _keeps_original(data, img):
    if _orientation(img) != 1:
        return False
    if img.format == "JPEG":
        return img.mode in ("RGB", "L")
    if img.format == "PNG":
        bit_depth, colour_type = data[24], data[25]  # IHDR follows the 8-byte signature and 8-byte chunk head
        return (data.startswith(_PNG_SIGNATURE) and bit_depth == 8 and colour_type in (_PNG_GRAY, _PNG_RGB)
                and "transparency" not in img.info)
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
