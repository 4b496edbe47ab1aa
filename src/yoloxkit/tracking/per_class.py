"""Per-class tracking: one tracker per class, so that a track never changes class and boxes of
different classes are never matched to each other (``Tracker(..., per_class=True)``,
``track --per-class``).

The trackers themselves are class-agnostic, as ByteTrack is: a person's track may continue with
a box the detector calls a bicycle in one frame. That keeps a track alive through class flicker,
which is why it stays the default; per-class tracking suits scenes where classes are reliable
and count separately (vehicles against pedestrians at a crossing).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .library import AssociationTracker

__all__ = ["PerClassTracker"]


class PerClassTracker:
    """Class-aware association: a separate tracker (made by ``make``) for every class seen.

    Every class's tracker is updated on every frame, with its own boxes or none, so that its lost
    tracks age as they would alone. Ids are unique across classes: each ``(class, id)`` pair gets
    the next free id from 1, in order of first confirmation.
    """

    def __init__(self, make: Callable[[], AssociationTracker]) -> None:
        self._make = make
        self.name = make().name
        self.reset()

    def reset(self) -> None:
        self._trackers: dict[int, AssociationTracker] = {}
        self._ids: dict[tuple[int, int], int] = {}

    def update(self, boxes: np.ndarray, scores: np.ndarray, frame: np.ndarray | None,
               class_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Associate one frame's detections (``[N, 4]`` xyxy, ``[N]`` scores, ``[N]`` class ids)
        class by class: the indices of the tracked detections and their ids (>= 1)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        classes = np.zeros(len(boxes), np.int64) if class_ids is None else np.asarray(class_ids, np.int64).reshape(-1)
        for new in sorted(set(classes.tolist()) - set(self._trackers)):
            self._trackers[new] = self._make()
        index_parts, id_parts = [], []
        for cls, tracker in self._trackers.items():
            members = np.nonzero(classes == cls)[0]
            index, ids = tracker.update(boxes[members], scores[members], frame)
            index_parts.append(members[np.asarray(index, dtype=np.int64)])
            id_parts.append(np.array([self._global_id(cls, int(i)) for i in ids], dtype=np.int64))
        if not index_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(index_parts), np.concatenate(id_parts)

    def _global_id(self, cls: int, local: int) -> int:
        key = (cls, local)
        if key not in self._ids:
            self._ids[key] = len(self._ids) + 1
        return self._ids[key]
