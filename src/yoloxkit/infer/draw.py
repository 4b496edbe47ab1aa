"""Drawing detections on images with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["class_color", "draw_detections"]


# Twenty well-separated colours (RGB, the "tab20"-like order reshuffled so that neighbouring
# class ids, e.g. COCO car=2 and truck=7, differ clearly).
_PALETTE_RGB = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (255, 225, 25), (0, 128, 128), (170, 110, 40),
    (128, 0, 0), (170, 255, 195), (128, 128, 0), (0, 0, 128), (250, 190, 212),
    (210, 245, 60), (220, 190, 255), (255, 215, 180), (128, 128, 128), (0, 0, 0),
)


def class_color(class_id: int) -> tuple[int, int, int]:
    """A distinct BGR colour per class (a fixed 20-colour palette, repeated)."""
    r, g, b = _PALETTE_RGB[int(class_id) % len(_PALETTE_RGB)]
    return b, g, r


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
