"""Upload limits and safe image decoding for the HTTP server.

Every rejection is an :class:`UploadRejected` carrying the HTTP status to answer with:
413 for an upload or image that is too large (including decompression bombs, whose pixel
count is read from the header before anything is decoded), 415 for data that is not an
image in an accepted format, 400 for an empty, truncated or corrupt image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["UploadLimits", "UploadRejected", "ACCEPTED_FORMATS", "decode_upload"]

# Raster formats decoded in-process by Pillow (no external delegates such as Ghostscript).
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF")

DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on one upload: body size in bytes and decoded pixel count (width x height)."""

    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 2**20)
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1:
            raise ValueError(f"max_upload_bytes must be >= 1, got {self.max_upload_bytes}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")


class UploadRejected(Exception):
    """An upload the server refuses; ``status_code`` is the HTTP status to answer with."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def decode_upload(data: bytes, limits: UploadLimits, name: str = "upload") -> np.ndarray:
    """Decode uploaded bytes into a BGR ``uint8`` array ``[H, W, 3]``, enforcing ``limits``.

    EXIF orientation is applied and alpha is dropped, as ``cv2.imread`` does, so the server
    sees the same pixels as ``yoloxkit predict`` on the same file.
    """
    if not data:
        raise UploadRejected(400, f"{name}: empty upload")
    if len(data) > limits.max_upload_bytes:
        raise UploadRejected(413, f"{name}: {len(data)} bytes exceeds the upload limit of {limits.max_upload_bytes}")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise UploadRejected(413, f"{name}: image has too many pixels ({exc})") from None
    except UnidentifiedImageError:
        raise UploadRejected(
            415, f"{name}: not an image in an accepted format ({', '.join(ACCEPTED_FORMATS)})"
        ) from None
    except Exception as exc:  # malformed headers raise assorted errors inside Pillow's plugins
        raise UploadRejected(400, f"{name}: unreadable image header ({type(exc).__name__})") from None
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise UploadRejected(400, f"{name}: image has no pixels ({width}x{height})")
        if width * height > limits.max_pixels:
            raise UploadRejected(
                413, f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of {limits.max_pixels}"
            )
        try:
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            rgb = np.asarray(upright.convert("RGB"))
        except Image.DecompressionBombError as exc:
            raise UploadRejected(413, f"{name}: image has too many pixels ({exc})") from None
        except Exception as exc:  # truncated data, bad compressed stream, unsupported mode...
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UploadRejected(400, f"{name}: truncated or corrupt image ({reason})") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] * rgb.shape[1] > limits.max_pixels:
        raise UploadRejected(400, f"{name}: could not decode the image to 3-channel pixels")
    return np.ascontiguousarray(rgb[:, :, ::-1])

