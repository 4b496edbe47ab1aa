"""The letterbox of YOLOX, for training and inference alike (DESIGN.md §2).

Keep-ratio resize with ``cv2.INTER_LINEAR`` so the image fits ``(height, width)``, the sides
truncated to integers, placed at the top-left corner of a canvas filled with :data:`PAD_VALUE`;
BGR channel order, values 0-255, no mean/std. This is the official ``preproc`` (before its
transpose), which the official code uses for training and inference; boxes predicted on the
canvas map back to the image by dividing by the ratio.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["PAD_VALUE", "to_size", "fit_size", "letterbox_ratio", "pad_to", "letterbox", "letterbox_batch"]

PAD_VALUE = 114


def to_size(size: int | Sequence[int]) -> tuple[int, int]:
    """Normalise a model input size (``416`` or ``(h, w)``) to ``(h, w)`` positive multiples of 32."""
    height, width = _parse_size(size)
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise ValueError(f"size must be positive multiples of 32, got {height}x{width}")
    return height, width


def _parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    values = tuple(int(v) for v in size)
    if len(values) != 2:
        raise ValueError(f"size must be an int or (height, width), got {size!r}")
    return values[0], values[1]


def _canvas_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``416`` or ``(h, w)`` as positive ``(h, w)`` (any values: augmentations need other sizes)."""
    height, width = _parse_size(size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {height}x{width}")
    return height, width


def fit_size(height: int, width: int, size: Sequence[int]) -> tuple[float, int, int]:
    """Keep-ratio resize of ``height x width`` into ``size`` (h, w): ``(ratio, new_h, new_w)``
    with the sides truncated to integers, as the official pre-processing does, but never below
    one pixel (a 3000x2 image into 416 is 416x1, not 416x0, which no resize can make)."""
    ratio = min(size[0] / height, size[1] / width)
    return ratio, max(1, int(height * ratio)), max(1, int(width * ratio))


def letterbox_ratio(image_hw: tuple[int, int], size_hw: tuple[int, int]) -> float:
    """Resize ratio that fits an image of ``image_hw`` inside ``size_hw`` keeping its aspect."""
    return fit_size(image_hw[0], image_hw[1], size_hw)[0]


def _blank(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, PAD_VALUE, dtype=np.uint8)


def _resize_into(canvas: np.ndarray, image: np.ndarray) -> float:
    """Resize ``image`` into the top-left of ``canvas`` (already filled); return the ratio."""
    height, width = image.shape[:2]
    ratio, new_h, new_w = fit_size(height, width, canvas.shape[:2])
    if (new_h, new_w) == (height, width):
        canvas[:new_h, :new_w] = image
    else:
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return ratio


def pad_to(image: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """``image`` (no larger than ``size``) at the top-left of a new ``size`` canvas of :data:`PAD_VALUE`."""
    height, width = _canvas_size(size)
    if image.shape[0] > height or image.shape[1] > width:
        raise ValueError(f"a {image.shape[0]}x{image.shape[1]} image does not fit in {height}x{width}")
    canvas = _blank((height, width, 3))
    canvas[: image.shape[0], : image.shape[1]] = image
    return canvas


def letterbox(image: np.ndarray, size: int | Sequence[int]) -> tuple[np.ndarray, float]:
    """Letterbox one BGR ``uint8`` image into a new ``[h, w, 3]`` ``uint8`` array; return it and
    the ratio. ``size`` is ``416`` or ``(h, w)``, any positive size (see :func:`to_size` for the
    model input sizes)."""
    height, width = _canvas_size(size)
    canvas = _blank((height, width, 3))
    return canvas, _resize_into(canvas, image)


def letterbox_batch(images: Sequence[np.ndarray], size: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Letterbox several BGR ``uint8`` images into one ``[B, h, w, 3]`` ``uint8`` array.

    Returns the batch (channels last; backends convert it to ``[B, 3, h, w]`` float) and the
    per-image resize ratios ``[B]`` (float64).
    """
    height, width = _canvas_size(size)
    batch = _blank((len(images), height, width, 3))
    ratios = np.empty(len(images), dtype=np.float64)
    for index, image in enumerate(images):
        ratios[index] = _resize_into(batch[index], image)
    return batch, ratios
