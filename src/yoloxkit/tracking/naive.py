"""The naive baseline tracker: detections linked to the previous frame's by IoU, nothing more.

No motion model and no memory: an object missed for one frame, or that moves more than its
overlap allows, gets a new id. It is the yardstick the real trackers are measured against
(docs/tracking.md), and a pure function plus a few lines of state.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_iou_matrix", "greedy_iou_matches", "IouTracker"]


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` ``[N, 4]`` with every box of ``b`` ``[M, 4]`` (xyxy): ``[N, M]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def greedy_iou_matches(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs ``(row, column)`` of ``iou`` taken greedily by decreasing IoU, each row and column
    at most once, every pair's IoU at least ``threshold``."""
    iou = np.asarray(iou, dtype=np.float64)
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    matches = []
    for k in order.tolist():
        r, c = int(rows[k]), int(cols[k])
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            matches.append((r, c))
    return matches


class IouTracker:
    """Frame-to-frame IoU association (the ``iou`` tracker).

    A detection scoring at least ``track_thresh`` takes the id of the previous frame's detection
    it overlaps most (IoU at least ``match_thresh``, greedy), or a new id.
    """

    name = "iou"

    def __init__(self, track_thresh: float = 0.25, match_thresh: float = 0.3) -> None:
        self.track_thresh = float(track_thresh)
        self.match_thresh = float(match_thresh)
        self.reset()

    def reset(self) -> None:
        self._boxes = np.zeros((0, 4))
        self._ids = np.zeros(0, dtype=np.int64)
        self._next_id = 1

    def update(self, boxes: np.ndarray, scores: np.ndarray, frame: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        index = np.nonzero(np.asarray(scores).reshape(-1) >= self.track_thresh)[0]
        ids = np.zeros(len(index), dtype=np.int64)
        matched = greedy_iou_matches(box_iou_matrix(self._boxes, boxes[index]), self.match_thresh)
        for previous, current in matched:
            ids[current] = self._ids[previous]
        for k in range(len(index)):
            if ids[k] == 0:
                ids[k] = self._next_id
                self._next_id += 1
        self._boxes, self._ids = boxes[index], ids
        return index.astype(np.int64), ids.copy()
