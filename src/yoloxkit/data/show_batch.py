"""``show-batch``: a PNG grid of augmented training samples with their boxes and class names."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from ..io import atomic_path

__all__ = ["draw_sample", "sample_grid", "write_batch_grid"]


def _colour(class_id: int) -> tuple[int, int, int]:
    hue = (class_id * 47) % 180
    pixel = cv2.cvtColor(np.array([[[hue, 200, 230]]], dtype=np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def draw_sample(image: np.ndarray, targets: np.ndarray, names: list[str]) -> np.ndarray:
    """A copy of ``image`` (uint8 BGR HWC) with the non-padding ``targets`` rows
    ``(class, cx, cy, w, h)`` drawn as labelled boxes."""
    canvas = np.ascontiguousarray(image).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for class_id, cx, cy, w, h in np.asarray(targets, dtype=np.float64).reshape(-1, 5):
        if w <= 0 or h <= 0:
            continue  # padding row
        cid = int(class_id)
        colour = _colour(cid)
        x1, y1, x2, y2 = (int(round(v)) for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        label = names[cid] if 0 <= cid < len(names) else str(cid)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        ty = max(y1, th + base)
        cv2.rectangle(canvas, (x1, ty - th - base), (x1 + tw + 2, ty), colour, -1)
        cv2.putText(canvas, label, (x1 + 1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def sample_grid(samples: list[tuple[np.ndarray, np.ndarray]], names: list[str], columns: int | None = None,
                gap: int = 4) -> np.ndarray:
    """Draw each ``(image, targets)`` sample and tile them into one BGR image."""
    drawn = [draw_sample(image, targets, names) for image, targets in samples]
    columns = columns or math.ceil(math.sqrt(len(drawn)))
    rows = math.ceil(len(drawn) / columns)
    h = max(d.shape[0] for d in drawn)
    w = max(d.shape[1] for d in drawn)
    grid = np.full((rows * h + (rows + 1) * gap, columns * w + (columns + 1) * gap, 3), 255, dtype=np.uint8)
    for k, image in enumerate(drawn):
        r, c = divmod(k, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        grid[y: y + image.shape[0], x: x + image.shape[1]] = image
    return grid


def write_batch_grid(dataset, out: str | os.PathLike, count: int = 16, start: int = 0,
                     columns: int | None = None) -> Path:
    """Write a PNG grid of ``count`` samples of a :class:`~yoloxkit.data.dataset.TrainingDataset`
    (indices ``start..start+count-1``, wrapping around) to ``out``."""
    samples = [dataset[(start + k) % len(dataset)] for k in range(count)]
    grid = sample_grid(samples, dataset.names, columns)
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), grid):
            raise OSError(f"cannot write {out}")
    return out
