"""Upload limits for the HTTP server, and uploads decoded by the one decoder.

The pixels come from :func:`yoloxkit.imaging.decode.decode_image`, the decoder of ``predict``,
``eval`` and training, so the server sees the same array as ``yoloxkit predict`` on the same
file. Every rejection is an :class:`UploadRejected` carrying the HTTP status to answer with:
413 for an upload or image that is too large (including decompression bombs, whose pixel
count is read from the header before anything is decoded), 415 for data that is not an
image in an accepted format (or with samples the decoder does not take), 400 for an empty,
truncated or corrupt image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ImageReadError, ImageTooLargeError, UnsupportedImageError
from ..imaging.decode import DECODED_FORMATS, DEFAULT_MAX_PIXELS, decode_image, max_pixels

__all__ = ["UploadLimits", "UploadRejected", "ACCEPTED_FORMATS", "DEFAULT_MAX_PIXELS", "decode_upload"]

#: the formats (Pillow's names) an upload may have: those of the one decoder
ACCEPTED_FORMATS: tuple[str, ...] = DECODED_FORMATS

DEFAULT_MAX_UPLOAD_MB = 20.0


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on one upload: body size in bytes and decoded pixel count (width x height).

    ``max_pixels=None`` takes the pixel limit of every command,
    :func:`~yoloxkit.imaging.decode.max_pixels` (``YOLOXKIT_MAX_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`), read when the limits are made.
    """

    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 2**20)
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.max_pixels is None:
            object.__setattr__(self, "max_pixels", max_pixels())
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
    """Decode uploaded bytes into a BGR ``uint8`` array ``[H, W, 3]``, enforcing ``limits``:
    the array :func:`~yoloxkit.imaging.read_image` gives for a file of these bytes."""
    if not data:
        raise UploadRejected(400, f"{name}: empty upload")
    if len(data) > limits.max_upload_bytes:
        raise UploadRejected(413, f"{name}: {len(data)} bytes exceeds the upload limit of {limits.max_upload_bytes}")
    try:
        return decode_image(data, name, limits.max_pixels)
    except ImageTooLargeError as exc:
        raise UploadRejected(413, str(exc)) from None
    except UnsupportedImageError as exc:
        raise UploadRejected(415, str(exc)) from None
    except ImageReadError as exc:
        raise UploadRejected(400, str(exc)) from None
