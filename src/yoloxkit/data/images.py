"""Image file helpers for dataset readers: size from the header, list image files."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageReadError

__all__ = ["IMAGE_SUFFIXES", "image_size", "list_images", "decode_image"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jpe"})


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` read from the file header (no decoding); :class:`ImageReadError` if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.width), int(image.height)
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except Exception as exc:  # Pillow raises several types on bad headers
        raise ImageReadError(f"cannot read image {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None


def list_images(directory: Path) -> list[Path]:
    """Image files under ``directory`` (recursively), sorted."""
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _truncated(data: np.ndarray) -> bool:
    """JPEG without its end-of-image marker, or PNG without its IEND chunk."""
    head = data[:8].tobytes()
    if head.startswith(b"\xff\xd8"):
        tail = data[-64:].tobytes().rstrip(b"\x00\r\n ")
        return not tail.endswith(b"\xff\xd9")
    if head.startswith(b"\x89PNG"):
        return b"IEND" not in data[-64:].tobytes()
    return False


def decode_image(path: Path) -> np.ndarray:
    """Read an image file as BGR ``uint8`` ``[H, W, 3]``; :class:`ImageReadError` naming the file
    if it is missing, empty, not an image, or truncated (which OpenCV would pad with grey)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if data.size == 0:
        raise ImageReadError(f"cannot read image {path}: the file is empty")
    if _truncated(data):
        from PIL import Image

        try:  # trailing bytes after a complete image are harmless; a truncated one fails here
            with Image.open(io.BytesIO(data.tobytes())) as image:
                image.load()
        except Exception:
            raise ImageReadError(f"cannot read image {path}: truncated or corrupt") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"cannot read image {path}: not an image or an unsupported format")
    return image
