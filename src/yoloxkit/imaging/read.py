"""Reading and validating images: files, BGR arrays, and lists of both.

Every image that enters training or inference goes through :func:`read_image` (files, decoded
by :func:`~yoloxkit.imaging.decode.decode_image`, the one decoder) or :func:`as_bgr` (arrays),
so a missing file, a non-image file, a truncated JPEG or an image over the pixel limit stops
with :class:`~yoloxkit.errors.ImageReadError` naming the file. :func:`image_size` reads only the
header, for dataset readers: the upright size, the size the decoded pixels have.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

from ..errors import ImageReadError
from .decode import check_pixels, decode_image, read_header

__all__ = ["ImageInput", "read_image", "as_bgr", "load_images", "image_size"]

ImageInput = Union[str, os.PathLike, np.ndarray]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as a BGR ``uint8`` array ``[H, W, 3]``, upright (EXIF orientation applied).

    Raises :class:`ImageReadError` for a missing file, a file that is not an image, a truncated
    JPEG or PNG (which OpenCV would return partly grey) and an image over the pixel limit
    (:func:`~yoloxkit.imaging.decode.max_pixels`, refused from its header).
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
    return decode_image(data, str(path))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of the upright image (swapped for EXIF orientations 5-8, as the decoded
    pixels are), read from the file header (no decoding); :class:`ImageReadError` if unreadable
    or over the pixel limit."""
    header = read_header(path)
    check_pixels(header, str(path))
    return header.upright_size


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
