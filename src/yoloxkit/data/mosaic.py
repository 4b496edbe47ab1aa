"""Mosaic of four images and MixUp, as in official YOLOX.

Mosaic: four images (already resized to fit the input size) are placed around a random centre
of a ``2H x 2W`` grey canvas (image 0 ends at the centre from the top-left, 1 from the top-right,
2 from the bottom-left, 3 from the bottom-right), then the canvas goes through the random affine
(:func:`~yoloxkit.data.transforms.random_affine_matrix`) into an ``H x W`` image.

The canvas is never built whole: only the part of it that the affine maps into the output (plus
a margin for bilinear sampling) is filled, and an image that does not reach that part is not
decoded at all. Its boxes are still transformed (and come out clipped), so the result equals
building the full canvas and warping it.

MixUp: a second image, letterboxed into ``H x W``, scaled by U(mixup_scale), flipped with
probability 1/2, zero-padded and randomly cropped back to ``H x W``, is averaged 50/50 with the
mosaic (pixel values floored, like the official uint8 cast); its boxes are added.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from ..imaging import PAD_VALUE, letterbox
from .transforms import warp_boxes

__all__ = ["tile_placement", "visible_region", "mosaic4", "mixup"]

# Returns a mosaic tile's image; called only for tiles that are visible in the output.
ImageLoader = Callable[[], np.ndarray]
_MARGIN = 2  # pixels of canvas kept around the visible region for bilinear sampling


def tile_placement(position: int, centre: tuple[int, int], tile_hw: tuple[int, int],
                   canvas_hw: tuple[int, int]) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Where tile ``position`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right of the
    centre) lands: ``(canvas x1, y1, x2, y2)`` and the matching ``(tile x1, y1, x2, y2)`` crop."""
    xc, yc = centre
    h, w = tile_hw
    canvas_h, canvas_w = canvas_hw
    if position == 0:
        x1, y1, x2, y2 = max(xc - w, 0), max(yc - h, 0), xc, yc
        crop = (w - (x2 - x1), h - (y2 - y1), w, h)
    elif position == 1:
        x1, y1, x2, y2 = xc, max(yc - h, 0), min(xc + w, canvas_w), yc
        crop = (0, h - (y2 - y1), min(w, x2 - x1), h)
    elif position == 2:
        x1, y1, x2, y2 = max(xc - w, 0), yc, xc, min(yc + h, canvas_h)
        crop = (w - (x2 - x1), 0, w, min(y2 - y1, h))
    elif position == 3:
        x1, y1, x2, y2 = xc, yc, min(xc + w, canvas_w), min(yc + h, canvas_h)
        crop = (0, 0, min(w, x2 - x1), min(y2 - y1, h))
    else:
        raise ValueError(f"mosaic position must be 0..3, got {position}")
    return (x1, y1, x2, y2), crop


def visible_region(matrix: np.ndarray, out_hw: tuple[int, int], canvas_hw: tuple[int, int],
                   margin: int = _MARGIN) -> tuple[int, int, int, int]:
    """The integer canvas rectangle ``(x1, y1, x2, y2)`` that an affine ``matrix`` (canvas ->
    output) samples for an ``out_hw`` output, widened by ``margin`` and clipped to the canvas."""
    height, width = out_hw
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)[:2]
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], dtype=np.float64)
    source = corners @ inverse.T
    canvas_h, canvas_w = canvas_hw
    x1 = int(np.clip(np.floor(source[:, 0].min()) - margin, 0, canvas_w))
    y1 = int(np.clip(np.floor(source[:, 1].min()) - margin, 0, canvas_h))
    x2 = int(np.clip(np.ceil(source[:, 0].max()) + margin, 0, canvas_w))
    y2 = int(np.clip(np.ceil(source[:, 1].max()) + margin, 0, canvas_h))
    return x1, y1, x2, y2


def mosaic4(
    tiles: list[tuple[tuple[int, int], ImageLoader, np.ndarray]],
    centre: tuple[int, int],
    matrix: np.ndarray,
    out_hw: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Mosaic of four tiles warped by the affine ``matrix`` into an ``out_hw`` image.

    ``tiles`` are ``((h, w), load, boxes)``: the tile's size, a function returning its image
    (of that size), and its xyxy boxes. Returns ``(image, boxes [N, 4] in output pixels,
    tile index of each box)``; boxes are clipped to the canvas, then to the output, and, as in
    the official code, all of them are returned, also those clipped to zero size (the box filter
    comes later, and a sample that keeps no box falls back to all of them).
    """
    out_h, out_w = out_hw
    canvas_hw = (2 * out_h, 2 * out_w)
    vx1, vy1, vx2, vy2 = visible_region(matrix, out_hw, canvas_hw)
    canvas = np.full((max(vy2 - vy1, 1), max(vx2 - vx1, 1), 3), PAD_VALUE, dtype=np.uint8)
    all_boxes, owners = [], []
    for position, ((h, w), load, boxes) in enumerate(tiles):
        (x1, y1, x2, y2), (sx1, sy1, sx2, sy2) = tile_placement(position, centre, (h, w), canvas_hw)
        # the part of this tile's canvas rectangle that is visible
        ix1, iy1, ix2, iy2 = max(x1, vx1), max(y1, vy1), min(x2, vx2), min(y2, vy2)
        if ix2 > ix1 and iy2 > iy1:
            image = load()
            if image.shape[:2] != (h, w):
                raise ValueError(f"mosaic tile {position}: loader gave {image.shape[:2]}, expected {(h, w)}")
            canvas[iy1 - vy1: iy2 - vy1, ix1 - vx1: ix2 - vx1] = image[
                sy1 + iy1 - y1: sy1 + iy2 - y1, sx1 + ix1 - x1: sx1 + ix2 - x1
            ]
        if len(boxes):
            shifted = np.asarray(boxes, dtype=np.float64) + np.array([x1 - sx1, y1 - sy1, x1 - sx1, y1 - sy1])
            all_boxes.append(shifted)
            owners += [position] * len(boxes)
    boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4))
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, canvas_hw[1])
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, canvas_hw[0])
    # warp the visible crop: canvas point p = crop point q + (vx1, vy1)
    shifted = matrix.copy()
    shifted[:, 2] = matrix[:, :2] @ np.array([vx1, vy1], dtype=np.float64) + matrix[:, 2]
    image = cv2.warpAffine(canvas, shifted, (out_w, out_h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3)
    return image, warp_boxes(boxes, matrix, out_hw), owners


def mixup(
    image: np.ndarray,
    other: np.ndarray,
    other_boxes: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.5, 1.5),
) -> tuple[np.ndarray, np.ndarray]:
    """Blend ``other`` (any size, with xyxy ``other_boxes``) into ``image`` as official YOLOX
    MixUp does; returns the blended image and ``other``'s boxes in its pixels (clipped)."""
    out_h, out_w = image.shape[:2]
    jitter = rng.uniform(scale[0], scale[1])
    flip = rng.uniform(0.0, 1.0) > 0.5
    boxed, ratio = letterbox(other, (out_h, out_w))
    new_w, new_h = int(out_w * jitter), int(out_h * jitter)
    scaled = cv2.resize(boxed, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    ratio *= jitter
    if flip:
        scaled = cv2.flip(scaled, 1)
    # the scaled image sits in the top-left of a zero canvas of at least the output size,
    # from which an output-sized window is cut at a random offset
    pad_h, pad_w = max(new_h, out_h), max(new_w, out_w)
    y_off = int(rng.integers(0, pad_h - out_h)) if pad_h > out_h else 0
    x_off = int(rng.integers(0, pad_w - out_w)) if pad_w > out_w else 0
    window = np.zeros_like(image)
    part = scaled[y_off: y_off + out_h, x_off: x_off + out_w]
    window[: part.shape[0], : part.shape[1]] = part

    boxes = np.asarray(other_boxes, dtype=np.float64).reshape(-1, 4) * ratio
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, new_w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, new_h)
    if flip:
        boxes[:, [0, 2]] = new_w - boxes[:, [2, 0]]
    boxes[:, 0::2] = (boxes[:, 0::2] - x_off).clip(0, out_w)
    boxes[:, 1::2] = (boxes[:, 1::2] - y_off).clip(0, out_h)

    # floor((a + b) / 2) without widening: a//2 + b//2 + (1 if both are odd)
    blended = (image >> 1) + (window >> 1) + (image & window & 1)
    return blended, boxes
