"""Predictions of one image in dataset class indices: what every evaluator consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ImagePredictions"]


@dataclass
class ImagePredictions:
    """``boxes`` ``[N, 4]`` float32 xyxy in original-image pixels, ``scores`` ``[N]`` float32,
    ``class_ids`` ``[N]`` int64 indices into the dataset's ``names``."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if not (len(self.boxes) == len(self.scores) == len(self.class_ids)):
            raise ValueError(
                f"predictions disagree in length: {len(self.boxes)} boxes, {len(self.scores)} scores, "
                f"{len(self.class_ids)} class ids"
            )

    @classmethod
    def empty(cls) -> "ImagePredictions":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, mask: np.ndarray) -> "ImagePredictions":
        return ImagePredictions(self.boxes[mask], self.scores[mask], self.class_ids[mask])
