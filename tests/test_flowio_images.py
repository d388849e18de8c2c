"""flowio.images: Pillow decoding rules, in process, on real files written by Pillow."""

import io
import numpy as np
import pytest
from PIL import Image

from flowio.images import Skip, check, decode_rgb
from helpers import (animated_gif, bomb_png, exif_rotated_jpeg, gray16_png, pattern, pillow_rgb, save,
                     truncated_jpeg)


def write(tmp_path, kind):
    img = Image.fromarray(pattern(20, 28, 3))
    p = tmp_path / kind
    return {
        "rgb.jpg": lambda: save(p, img, "JPEG", quality=90),
        "gray.jpg": lambda: save(p, img.convert("L"), "JPEG"),
        "cmyk.jpg": lambda: save(p, img.convert("CMYK"), "JPEG"),
        "rotated.jpg": lambda: exif_rotated_jpeg(p),
        "rgb.png": lambda: save(p, img, "PNG"),
        "gray.png": lambda: save(p, img.convert("L"), "PNG"),
        "palette.png": lambda: save(p, img.convert("P"), "PNG"),
        "rgba.png": lambda: save(p, img.convert("RGBA"), "PNG"),
        "gray16.png": lambda: gray16_png(p),
        "rgb.bmp": lambda: save(p, img, "BMP"),
        "anim.gif": lambda: animated_gif(p),
        "rgb.webp": lambda: save(p, img, "WEBP", quality=80),
        "rgb.tiff": lambda: save(p, img, "TIFF"),
    }[kind]()


@pytest.mark.parametrize("kind, kept", [
    ("rgb.jpg", True), ("gray.jpg", True), ("rgb.png", True), ("gray.png", True),
    ("cmyk.jpg", False), ("rotated.jpg", False), ("palette.png", False), ("rgba.png", False),
    ("gray16.png", False), ("rgb.bmp", False), ("anim.gif", False), ("rgb.webp", False), ("rgb.tiff", False),
])
def test_accepted_formats_keep_or_reencode_and_decode_to_pillows_rgb(tmp_path, kind, kept):
    path = write(tmp_path, kind)
    data = path.read_bytes()
    result = check(data)
    assert result.kept_original is kept
    assert (result.encoded == data) is kept
    expected = pillow_rgb(path)
    assert (result.height, result.width) == expected.shape[:2]
    assert np.array_equal(decode_rgb(path), expected)
    if not kept:
        assert result.format == "png"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(result.encoded))), expected)


def test_sixteen_bit_samples_are_scaled_not_clipped(tmp_path):
    rgb = decode_rgb(gray16_png(tmp_path / "g.png"))
    assert rgb.max() > 200 and len(np.unique(rgb)) > 100  # Pillow's plain convert would clip most to 255


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("hello"), "not an image"),
    (truncated_jpeg, "truncated"),
    (bomb_png, "decompression bomb"),
    (lambda p: save(p, Image.fromarray(pattern(8, 8)), "PPM"), "unsupported image format PPM"),
])
def test_unusable_files_raise_skip_with_the_reason(tmp_path, make, reason):
    path = tmp_path / "f"
    make(path)
    with pytest.raises(Skip, match=reason):
        check(path.read_bytes())
