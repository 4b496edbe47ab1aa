"""Geometric and colour transforms for training, as pure functions of an image, its boxes and
explicit random draws (a ``numpy.random.Generator``), following the official YOLOX pipeline.

Images are ``uint8`` BGR ``[H, W, 3]``; boxes are float ``[N, 4]`` xyxy in pixels. The
letterbox is :func:`yoloxkit.imaging.letterbox`, shared with inference.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..imaging import PAD_VALUE

__all__ = [
    "random_hsv_gains",
    "augment_hsv",
    "hflip",
    "random_affine_matrix",
    "warp_boxes",
    "random_affine",
    "box_filter",
    "xyxy_to_cxcywh",
]


def random_hsv_gains(rng: np.random.Generator, gains: tuple[float, float, float] = (5, 30, 30)) -> np.ndarray:
    """Integer (hue, saturation, value) offsets: each is uniform in ``[-gain, gain]``, switched
    on with probability 1/2 and truncated toward zero (the official draw)."""
    values = rng.uniform(-1.0, 1.0, 3) * np.asarray(gains, dtype=np.float64)
    values *= rng.integers(0, 2, 3)
    return values.astype(np.int16)


def augment_hsv(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Shift hue (mod 180), saturation and value (clipped to 0..255) by integer ``gains``.

    Implemented as one lookup table per channel, which is exact for integer offsets.
    Returns a new image (the input is not modified).
    """
    dh, ds, dv = (int(g) for g in gains)
    if dh == 0 and ds == 0 and dv == 0:
        return image
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    levels = np.arange(256, dtype=np.int16)
    lut = np.empty((256, 1, 3), dtype=np.uint8)
    lut[:, 0, 0] = (levels + dh) % 180
    lut[:, 0, 1] = np.clip(levels + ds, 0, 255)
    lut[:, 0, 2] = np.clip(levels + dv, 0, 255)
    cv2.LUT(hsv, lut, dst=hsv)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right and its boxes with it."""
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return cv2.flip(image, 1), flipped


def random_affine_matrix(
    rng: np.random.Generator,
    out_size: tuple[int, int],
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.1, 2.0),
    shear: float = 2.0,
) -> np.ndarray:
    """A random 2x3 affine matrix as in official YOLOX: rotation by U(-degrees, degrees) and
    isotropic scale U(scale) about the origin, shear by U(-shear, shear) degrees on each axis,
    then a translation of U(-translate, translate) times the output width/height."""
    height, width = out_size
    angle = math.radians(rng.uniform(-degrees, degrees))
    factor = rng.uniform(scale[0], scale[1])
    if factor <= 0:
        raise ValueError(f"affine scale must be positive, got {factor}")
    cos, sin = factor * math.cos(angle), factor * math.sin(angle)
    rotation = np.array([[cos, sin], [-sin, cos]])  # counter-clockwise in image coordinates
    shear_x = math.tan(math.radians(rng.uniform(-shear, shear)))
    shear_y = math.tan(math.radians(rng.uniform(-shear, shear)))
    matrix = np.zeros((2, 3))
    matrix[:, :2] = np.array([[1.0, shear_y], [shear_x, 1.0]]) @ rotation
    matrix[0, 2] = rng.uniform(-translate, translate) * width
    matrix[1, 2] = rng.uniform(-translate, translate) * height
    return matrix


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Map xyxy boxes through a 2x3 affine ``matrix``: the axis-aligned box around the four
    transformed corners, clipped to the ``out_size`` (h, w) image."""
    if len(boxes) == 0:
        return np.zeros((0, 4), dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    xs = boxes[:, [0, 2, 0, 2]]
    ys = boxes[:, [1, 3, 3, 1]]
    new_x = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    new_y = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    height, width = out_size
    return np.stack(
        [
            new_x.min(1).clip(0, width),
            new_y.min(1).clip(0, height),
            new_x.max(1).clip(0, width),
            new_y.max(1).clip(0, height),
        ],
        axis=1,
    )


def random_affine(
    image: np.ndarray,
    boxes: np.ndarray,
    matrix: np.ndarray,
    out_size: tuple[int, int],
    pad_value: int = PAD_VALUE,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` (bilinear, border ``pad_value``) and ``boxes`` by ``matrix`` into ``out_size`` (h, w)."""
    height, width = out_size
    warped = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(pad_value,) * 3)
    return warped, warp_boxes(boxes, matrix, out_size)


def box_filter(boxes: np.ndarray, min_side: float = 1.0, min_area: float = 0.0,
               max_aspect: float | None = None) -> np.ndarray:
    """Boolean mask of the boxes to keep: both sides longer than ``min_side`` pixels (the
    official rule, strict), area at least ``min_area`` and, if given, aspect ratio (long side
    over short side) at most ``max_aspect``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    keep = np.minimum(w, h) > min_side
    if min_area > 0:
        keep &= w * h >= min_area
    if max_aspect is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            keep &= np.maximum(w, h) / np.maximum(np.minimum(w, h), 1e-12) <= max_aspect
    return keep


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """``[N, 4]`` xyxy -> (cx, cy, w, h)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack(
        [(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
         boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1
    )
