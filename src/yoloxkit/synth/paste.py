"""Pasting cut-outs into an image: a free place, alpha blending, the exact ground truth.

Used by :mod:`.small_objects`. Pasted objects never overlap each other (``GAP`` pixels apart) and
cover at most ``max_cover`` of any background box; ``TRIES`` random positions are tried per object.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from .cutouts import ScaledCutout

__all__ = ["GAP", "TRIES", "rle", "place", "paste", "pasted_annotation"]

GAP = 2  # pixels between two pasted objects
TRIES = 60  # random positions tried per object


def rle(mask: np.ndarray) -> dict:
    """COCO RLE of a ``[H, W]`` 0/1 mask, with ``counts`` as text (json-ready)."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def place(rng: np.random.Generator, target, shape, placed: list, bg_boxes: np.ndarray, covered: np.ndarray,
          max_cover: float) -> tuple[int, int] | None:
    """A free top-left corner for a ``shape = (h, w)`` patch, or ``None``; updates ``placed``/``covered``."""
    tw, th = target
    ph, pw = shape
    areas = (bg_boxes[:, 2] - bg_boxes[:, 0]) * (bg_boxes[:, 3] - bg_boxes[:, 1])
    for _ in range(TRIES):
        x, y = int(rng.integers(0, tw - pw + 1)), int(rng.integers(0, th - ph + 1))
        if any(x < b[2] + GAP and b[0] < x + pw + GAP and y < b[3] + GAP and b[1] < y + ph + GAP for b in placed):
            continue
        iw = np.clip(np.minimum(bg_boxes[:, 2], x + pw) - np.maximum(bg_boxes[:, 0], x), 0, None)
        ih = np.clip(np.minimum(bg_boxes[:, 3], y + ph) - np.maximum(bg_boxes[:, 1], y), 0, None)
        inter = iw * ih
        if np.any(covered + inter > max_cover * areas):
            continue
        covered += inter
        placed.append((x, y, x + pw, y + ph))
        return x, y
    return None


def paste(canvas: np.ndarray, scaled: ScaledCutout, x: int, y: int) -> None:
    """Alpha-blend ``scaled`` into BGR ``canvas`` at top-left ``(x, y)``, in place."""
    h, w = scaled.mask.shape
    roi = canvas[y:y + h, x:x + w]
    a = scaled.alpha[..., None]
    canvas[y:y + h, x:x + w] = np.clip(np.rint(a * scaled.patch + (1.0 - a) * roi), 0, 255).astype(np.uint8)


def pasted_annotation(scaled: ScaledCutout, x: int, y: int, target) -> dict:
    """The COCO annotation of ``scaled`` pasted at ``(x, y)`` into a ``target = (W, H)`` image (no ``id``)."""
    tw, th = target
    h, w = scaled.mask.shape
    full = np.zeros((th, tw), np.uint8)
    full[y:y + h, x:x + w] = scaled.mask
    return {
        "category_id": scaled.source.category_id, "bbox": [x, y, w, h], "area": int(scaled.mask.sum()),
        "iscrowd": 0, "segmentation": rle(full), "synth_source": "pasted",
        "source_id": scaled.source.annotation_id,
    }
