"""Decoding uploads safely: same pixels as cv2.imread, and each bad upload its HTTP status."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from serve_support import encode, png_bomb_header, sample_image
from yoloxkit.serve.limits import UploadLimits, UploadRejected, decode_upload

LIMITS = UploadLimits(max_upload_bytes=5_000_000, max_pixels=2_000_000)


def rejected_status(data: bytes, limits: UploadLimits = LIMITS) -> int:
    with pytest.raises(UploadRejected) as info:
        decode_upload(data, limits, "up.bin")
    assert "up.bin" in info.value.detail and "\n" not in info.value.detail
    return info.value.status_code


def test_same_pixels_as_cv2_imread(dog_jpg):
    decoded = decode_upload(dog_jpg.read_bytes(), LIMITS)
    expected = cv2.imread(str(dog_jpg))
    assert decoded.dtype == np.uint8 and decoded.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp", ".tiff"])
def test_lossless_formats_round_trip_in_bgr(ext):
    image = sample_image(40, 30)
    np.testing.assert_array_equal(decode_upload(encode(image, ext), LIMITS), image)


def test_exif_orientation_is_applied_like_cv2(tmp_path):
    image = sample_image(40, 20)
    pil = Image.fromarray(image[:, :, ::-1])
    exif = pil.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", exif=exif, quality=95)
    path = tmp_path / "rotated.jpg"
    path.write_bytes(buf.getvalue())
    decoded = decode_upload(buf.getvalue(), LIMITS)
    assert decoded.shape == (40, 20, 3)
    np.testing.assert_array_equal(decoded, cv2.imread(str(path)))


def test_grey_and_alpha_images_become_three_channels():
    grey = Image.fromarray(np.full((10, 12), 77, np.uint8))
    rgba = Image.fromarray(np.dstack([np.full((10, 12, 3), 9, np.uint8), np.zeros((10, 12), np.uint8)]), "RGBA")
    for picture in (grey, rgba):
        buf = io.BytesIO()
        picture.save(buf, format="PNG")
        decoded = decode_upload(buf.getvalue(), LIMITS)
        assert decoded.shape == (10, 12, 3)


def test_bad_uploads_and_their_statuses():
    png = encode(sample_image(64, 48))
    jpeg = encode(sample_image(64, 48), ".jpg")
    assert rejected_status(b"") == 400
    assert rejected_status(b"GIF89a but not really") in (400, 415)
    assert rejected_status(b"%PDF-1.4\n1 0 obj\n") == 415
    assert rejected_status(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n") == 415  # no Ghostscript
    assert rejected_status(b"<svg xmlns='http://www.w3.org/2000/svg'/>") == 415
    assert rejected_status(jpeg[:100]) == 400
    assert rejected_status(jpeg[: len(jpeg) - 200]) == 400
    assert rejected_status(png[:-30]) == 400
    assert rejected_status(png, UploadLimits(max_upload_bytes=len(png) - 1)) == 413
    assert rejected_status(png, UploadLimits(max_pixels=64 * 48 - 1)) == 413
    assert rejected_status(png_bomb_header(50_000, 50_000)) == 413
    assert rejected_status(png_bomb_header(2_000, 2_000)) == 413  # under Pillow's own bomb limit, over ours


def test_limits_validate():
    with pytest.raises(ValueError):
        UploadLimits(max_upload_bytes=0)
    with pytest.raises(ValueError):
        UploadLimits(max_pixels=0)
