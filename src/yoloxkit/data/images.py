"""Image file helpers for dataset readers: size from the header, list image files, decode."""

from __future__ import annotations

from pathlib import Path

from ..errors import ImageReadError
from ..infer.images import read_image

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


# Dataset images are read like any other input: missing, empty, non-image and truncated files
# (which OpenCV would pad with grey) raise ImageReadError naming the file.
decode_image = read_image
