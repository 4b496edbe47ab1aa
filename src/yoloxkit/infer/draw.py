"""Drawing detections on images with OpenCV."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

__all__ = ["class_color", "draw_detections"]


def class_color(class_id: int) -> tuple[int, int, int]:
    """A saturated BGR colour per class, spread around the hue circle (golden-ratio steps)."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background`` (BGR)."""
    b, g, r = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    names: list[str],
) -> np.ndarray:
    """Return a copy of BGR ``image`` with each box and a ``name score`` label drawn on it."""
    canvas = image.copy()
    height, width = canvas.shape[:2]
    scale = max(0.4, min(1.2, max(height, width) / 1000))
    thickness = max(1, round(2 * scale))
    font = cv2.FONT_HERSHEY_SIMPLEX
    # Draw the weakest first so that the strongest boxes end up on top.
    for index in np.argsort(scores, kind="stable"):
        x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[index])
        class_id = int(class_ids[index])
        color = class_color(class_id)
        name = names[class_id] if 0 <= class_id < len(names) else str(class_id)
        label = f"{name} {float(scores[index]):.2f}"
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        (text_w, text_h), baseline = cv2.getTextSize(label, font, 0.6 * scale, max(1, thickness - 1))
        top = y1 - text_h - baseline - 2 if y1 - text_h - baseline - 2 >= 0 else y1
        top = min(top, max(0, height - text_h - baseline - 2))
        cv2.rectangle(canvas, (x1, top), (x1 + text_w + 2, top + text_h + baseline + 2), color, -1)
        cv2.putText(
            canvas, label, (x1 + 1, top + text_h + 1), font, 0.6 * scale, _text_color(color),
            max(1, thickness - 1), cv2.LINE_AA,
        )
    return canvas
