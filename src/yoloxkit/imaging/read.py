"""Reading and validating images: files, BGR arrays, and lists of both.

Every image that enters training or inference goes through :func:`read_image` (files) or
:func:`as_bgr` (arrays), so a missing file, a non-image file or a truncated JPEG
stops with :class:`~yoloxkit.errors.ImageReadError` naming the file. :func:`image_size` reads
only the header, for dataset readers.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

from ..errors import ImageReadError

__all__ = ["ImageInput", "read_image", "as_bgr", "load_images", "image_size"]

ImageInput = Union[str, os.PathLike, np.ndarray]

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


def _looks_truncated(data: bytes) -> bool:
    """Quick check of the end marker of JPEG and PNG files (some writers pad with zeros)."""
    if data.startswith(_JPEG_START):
        return not data.rstrip(b"\x00\r\n ").endswith(_JPEG_END)
    if data.startswith(_PNG_START):
        return _PNG_END not in data[-64:]
    return False


def _verify_with_pillow(data: bytes, name: str) -> None:
    """Decode ``data`` fully with Pillow, which raises on truncated data."""
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... on bad data
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"cannot read image {name}: truncated or corrupt ({reason})") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as a BGR ``uint8`` array ``[H, W, 3]``.

    Raises :class:`ImageReadError` for a missing file, a file that is not an image, and a
    truncated JPEG (which OpenCV would silently return partly grey).
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"image file not found: {path}")
    if not path.is_file():
        raise ImageReadError(f"not an image file (it is a directory or special file): {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if not data:
        raise ImageReadError(f"cannot read image {path}: the file is empty")
    if _looks_truncated(data):
        # The end marker is missing: either trailing bytes after a complete image (rare but
        # valid) or a truncated file, which OpenCV would return partly grey. Pillow tells
        # them apart by decoding everything.
        _verify_with_pillow(data, str(path))
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"cannot read image {path}: not an image file or an unsupported format")
    return image


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` read from the file header (no decoding); :class:`ImageReadError` if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.width), int(image.height)
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except Exception as exc:  # Pillow raises several types on bad headers
        raise ImageReadError(f"cannot read image {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None


def as_bgr(array: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an array image and return it as BGR ``uint8`` ``[H, W, 3]``.

    Accepts BGR ``[H, W, 3]``, grayscale ``[H, W]`` or ``[H, W, 1]`` and BGRA ``[H, W, 4]``.
    """
    if not isinstance(array, np.ndarray):
        raise ImageReadError(f"{name}: expected a path or a numpy array, got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise ImageReadError(f"{name}: expected a uint8 array (BGR, 0-255), got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    elif not (array.ndim == 3 and array.shape[2] == 3):
        raise ImageReadError(
            f"{name}: expected an image array of shape HxWx3 (BGR), HxW or HxWx4, got {tuple(array.shape)}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageReadError(f"{name}: empty image of shape {tuple(array.shape)}")
    return array


def load_images(images: ImageInput | Sequence[ImageInput]) -> tuple[list[np.ndarray], list[str | None]]:
    """Turn one input or a list of inputs into BGR arrays and their source names.

    A path's name is its file name; an array has no name (``None``).
    """
    if isinstance(images, (str, os.PathLike, np.ndarray)):
        images = [images]
    arrays: list[np.ndarray] = []
    names: list[str | None] = []
    for index, item in enumerate(images):
        if isinstance(item, (str, os.PathLike)):
            arrays.append(read_image(item))
            names.append(Path(item).name)
        else:
            arrays.append(as_bgr(item, name=f"images[{index}]"))
            names.append(None)
    return arrays, names
