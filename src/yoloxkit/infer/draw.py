"""Drawing detections on images with OpenCV.

Labels are placed by :func:`place_labels`, a pure function of the boxes and the label sizes, so
that no label covers another: above the box if there is room, else inside its top, else below
it, shifted along the box when that spot is taken, and always within the image.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["class_color", "draw_detections", "label_rectangles", "place_labels"]

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive ends)

# Twenty well-separated colours (RGB, the "tab20"-like order reshuffled so that neighbouring
# class ids, e.g. COCO car=2 and truck=7, differ clearly).
_PALETTE_RGB = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (255, 225, 25), (0, 128, 128), (170, 110, 40),
    (128, 0, 0), (170, 255, 195), (128, 128, 0), (0, 0, 128), (250, 190, 212),
    (210, 245, 60), (220, 190, 255), (255, 215, 180), (128, 128, 128), (0, 0, 0),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
#: how many label heights a label may move along its box to find a free place
_MAX_SHIFTS = 8


def class_color(class_id: int) -> tuple[int, int, int]:
    """A distinct BGR colour per class (a fixed 20-colour palette, repeated)."""
    r, g, b = _PALETTE_RGB[int(class_id) % len(_PALETTE_RGB)]
    return b, g, r


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background`` (BGR)."""
    b, g, r = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _candidates(box: Sequence[float], w: int, h: int, width: int, height: int) -> np.ndarray:
    """Label positions for one box, best first, clamped to the image: ``[C, 4]`` rectangles."""
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    tops = [y1 - h, y1, y2, y2 - h]  # above, inside the top, below, inside the bottom
    for k in range(1, _MAX_SHIFTS + 1):  # then stacked further above, and further down inside
        tops += [y1 - h - k * h, y1 + k * h]
    lefts = [x1, x2 - w]  # aligned with the box's left edge, then its right edge
    xs = np.clip(np.array(lefts), 0, max(0, width - w))
    ys = np.clip(np.array(tops), 0, max(0, height - h))
    left, top = np.meshgrid(xs, ys)  # every top with the left edge first, then the right edge
    left, top = left.reshape(-1), top.reshape(-1)
    return np.stack([left, top, left + w, top + h], axis=1)


def _overlap(candidates: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """Total area each candidate shares with the placed rectangles: ``[C]``."""
    if not len(placed):
        return np.zeros(len(candidates), dtype=np.int64)
    ix = np.minimum(candidates[:, None, 2], placed[None, :, 2]) - np.maximum(candidates[:, None, 0], placed[None, :, 0])
    iy = np.minimum(candidates[:, None, 3], placed[None, :, 3]) - np.maximum(candidates[:, None, 1], placed[None, :, 1])
    return (np.clip(ix, 0, None) * np.clip(iy, 0, None)).sum(axis=1)


def place_labels(
    boxes: np.ndarray | Sequence[Sequence[float]],
    sizes: Sequence[tuple[int, int]],
    image_size: tuple[int, int],
    order: Sequence[int] | None = None,
) -> list[Rect]:
    """Rectangles ``(x1, y1, x2, y2)`` for the label of each box, placed so that they do not overlap.

    ``sizes`` are the labels' ``(w, h)``, ``image_size`` is ``(width, height)``; ``order`` is the
    order in which labels choose their place (default: as given; pass the boxes by decreasing
    score so that the strongest get their first choice). Each label takes the first free spot of:
    above the box, inside its top, below it, inside its bottom (left-aligned, then right-aligned),
    then positions stacked further along the box; every spot lies within the image. When none is
    free (more labels than room) it takes the spot that covers the least of the others.
    """
    width, height = int(image_size[0]), int(image_size[1])
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(sizes) != len(boxes):
        raise ValueError(f"{len(sizes)} label sizes for {len(boxes)} boxes")
    rects: list[Rect | None] = [None] * len(boxes)
    placed = np.zeros((0, 4), dtype=np.int64)
    for index in range(len(boxes)) if order is None else order:
        w, h = (int(v) for v in sizes[index])
        candidates = _candidates(boxes[index], w, h, width, height)
        overlap = _overlap(candidates, placed)
        best = candidates[int(np.argmin(overlap))]  # the first free one, or the least covering
        rects[index] = tuple(int(v) for v in best)
        placed = np.concatenate([placed, best[None]], axis=0)
    if any(r is None for r in rects):
        raise ValueError("order must name every box once")
    return rects  # type: ignore[return-value]


def _style(image_shape: Sequence[int]) -> tuple[float, int]:
    """Font scale and line thickness for an image of this shape."""
    height, width = image_shape[:2]
    scale = max(0.4, min(1.2, max(height, width) / 1000))
    return scale, max(1, round(2 * scale))


def _label_text(name_list: list[str], class_id: int, score: float, track_id: int | None = None) -> str:
    name = name_list[class_id] if 0 <= class_id < len(name_list) else str(class_id)
    return f"{name} {score:.2f}" if track_id is None else f"#{track_id} {name} {score:.2f}"


def _track_list(track_ids: np.ndarray | None, n: int) -> list[int | None]:
    return [None] * n if track_ids is None else [int(t) for t in np.asarray(track_ids).reshape(-1)]


def label_rectangles(
    image_shape: Sequence[int],
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    names: list[str],
    track_ids: np.ndarray | None = None,
) -> list[Rect]:
    """The label rectangles :func:`draw_detections` uses for these detections on an image of
    ``image_shape`` (``[H, W, ...]``): one per box, strongest placed first, none overlapping."""
    scale, thickness = _style(image_shape)
    sizes = []
    tracks = _track_list(track_ids, len(scores))
    for class_id, score, track in zip(np.asarray(class_ids).tolist(), np.asarray(scores).tolist(), tracks):
        label = _label_text(names, int(class_id), float(score), track)
        (text_w, text_h), baseline = cv2.getTextSize(label, _FONT, 0.6 * scale, max(1, thickness - 1))
        sizes.append((text_w + 2, text_h + baseline + 2))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable").tolist()
    height, width = image_shape[:2]
    return place_labels(boxes, sizes, (width, height), order=order)


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    names: list[str],
    track_ids: np.ndarray | None = None,
    trails: dict[int, Sequence[tuple[float, float]]] | None = None,
) -> np.ndarray:
    """Return a copy of BGR ``image`` with each box and a ``name score`` label drawn on it.

    With ``track_ids`` the colour follows the identity and labels read ``#id name score``;
    ``trails`` maps a track id to its recent box centres (oldest first), drawn as a line.
    """
    canvas = image.copy()
    scale, thickness = _style(canvas.shape)
    tracks = _track_list(track_ids, len(scores))
    colors = [class_color(int(c)) if t is None else class_color(t) for c, t in zip(np.asarray(class_ids).tolist(), tracks)]
    rects = label_rectangles(canvas.shape, boxes, scores, class_ids, names, track_ids)
    for track_id, points in (trails or {}).items():
        if len(points) > 1:
            line = np.round(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [line], False, class_color(int(track_id)), thickness, cv2.LINE_AA)
    # Boxes first, the weakest first so that the strongest end up on top; then every label,
    # so that no box line crosses a label.
    order = np.argsort(scores, kind="stable")
    for index in order:
        x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[index])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colors[index], thickness, cv2.LINE_AA)
    for index in order:
        class_id = int(class_ids[index])
        color = colors[index]
        lx1, ly1, lx2, ly2 = rects[index]
        label = _label_text(names, class_id, float(scores[index]), tracks[index])
        (_, text_h), _ = cv2.getTextSize(label, _FONT, 0.6 * scale, max(1, thickness - 1))
        cv2.rectangle(canvas, (lx1, ly1), (lx2 - 1, ly2 - 1), color, -1)
        cv2.putText(
            canvas, label, (lx1 + 1, ly1 + text_h + 1), _FONT, 0.6 * scale, _text_color(color),
            max(1, thickness - 1), cv2.LINE_AA,
        )
    return canvas
