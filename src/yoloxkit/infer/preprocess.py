"""Letterbox pre-processing for YOLOX inference (DESIGN.md §2).

Keep-ratio resize with ``cv2.INTER_LINEAR`` so the image fits ``(height, width)``, placed at
the top-left corner of a canvas filled with 114; BGR channel order, values 0-255, no
mean/std. Boxes predicted on the canvas map back to the image by dividing by the ratio.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["PAD_VALUE", "letterbox_ratio", "letterbox", "letterbox_batch", "to_size"]

PAD_VALUE = 114


def to_size(size: int | Sequence[int]) -> tuple[int, int]:
    """Normalise an input size (``416`` or ``(h, w)``) to ``(h, w)`` positive multiples of 32."""
    if isinstance(size, (int, np.integer)):
        height = width = int(size)
    else:
        values = tuple(int(v) for v in size)
        if len(values) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size!r}")
        height, width = values
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise ValueError(f"size must be positive multiples of 32, got {height}x{width}")
    return height, width


def letterbox_ratio(image_hw: tuple[int, int], size_hw: tuple[int, int]) -> float:
    """Resize ratio that fits an image of ``image_hw`` inside ``size_hw`` keeping its aspect."""
    return min(size_hw[0] / image_hw[0], size_hw[1] / image_hw[1])


def _resize_into(canvas: np.ndarray, image: np.ndarray) -> float:
    """Resize ``image`` into the top-left of ``canvas`` (already filled); return the ratio."""
    height, width = image.shape[:2]
    ratio = letterbox_ratio((height, width), canvas.shape[:2])
    new_w, new_h = int(width * ratio), int(height * ratio)
    if (new_w, new_h) == (width, height):
        canvas[:new_h, :new_w] = image
    else:
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return ratio


def letterbox(image: np.ndarray, size: int | Sequence[int]) -> tuple[np.ndarray, float]:
    """Letterbox one BGR ``uint8`` image into ``[h, w, 3]`` ``uint8``; return it and the ratio."""
    height, width = to_size(size)
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    return canvas, _resize_into(canvas, image)


def letterbox_batch(images: Sequence[np.ndarray], size: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Letterbox several BGR ``uint8`` images into one ``[B, h, w, 3]`` ``uint8`` array.

    Returns the batch (channels last; backends convert it to ``[B, 3, h, w]`` float) and the
    per-image resize ratios ``[B]`` (float64).
    """
    height, width = to_size(size)
    batch = np.full((len(images), height, width, 3), PAD_VALUE, dtype=np.uint8)
    ratios = np.empty(len(images), dtype=np.float64)
    for index, image in enumerate(images):
        ratios[index] = _resize_into(batch[index], image)
    return batch, ratios
