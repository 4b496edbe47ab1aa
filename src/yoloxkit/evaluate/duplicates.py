"""How often a detector reports one object twice: the duplicate measure of NMS-free detection.

A ground-truth box is *duplicated* when more than one detection of its class with
``score >= conf`` overlaps it with ``IoU >= iou`` (defaults 0.3 and 0.5). The measure is the
fraction of the scored ground-truth boxes that are duplicated; crowd (COCO ``iscrowd``) and
difficult (VOC) boxes are left out, as the metrics leave them out. An end-to-end model without
NMS should keep it small (a few percent); a base model run without NMS shows what NMS removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from ..data.records import ImageRecord
from .predictions import ImagePredictions

__all__ = ["DUPLICATE_CONF", "DUPLICATE_IOU", "DuplicateStats", "duplicated_gts", "duplicate_stats"]

#: the score a detection needs to count (the acceptance threshold of NMS-free detection)
DUPLICATE_CONF = 0.3
#: the IoU at which a detection matches a ground-truth box
DUPLICATE_IOU = 0.5


@dataclass(frozen=True)
class DuplicateStats:
    """``duplicated`` of the ``gts`` scored ground-truth boxes are matched by more than one
    detection (``score >= conf``, same class, ``IoU >= iou``)."""

    gts: int
    duplicated: int
    conf: float = DUPLICATE_CONF
    iou: float = DUPLICATE_IOU

    @property
    def fraction(self) -> float:
        """``duplicated / gts`` (0.0 without ground truth)."""
        return self.duplicated / self.gts if self.gts else 0.0

    @property
    def key(self) -> str:
        """The name the reports use, e.g. ``duplicates@0.3``."""
        return f"duplicates@{self.conf:g}"


def duplicated_gts(
    gt_boxes: np.ndarray,
    gt_classes: np.ndarray,
    pred: ImagePredictions,
    conf: float = DUPLICATE_CONF,
    iou: float = DUPLICATE_IOU,
) -> np.ndarray:
    """Per ground-truth box (``[N, 4]`` xyxy, classes ``[N]``), whether two or more of the
    detections in ``pred`` with ``score >= conf`` and its class overlap it with ``IoU >= iou``."""
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_classes = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
    kept = pred.select(pred.scores >= conf)
    if len(gt_boxes) == 0 or len(kept) == 0:
        return np.zeros(len(gt_boxes), dtype=bool)
    overlap = box_iou(torch.from_numpy(kept.boxes.astype(np.float64)), torch.from_numpy(gt_boxes)).numpy()
    matches = (overlap >= iou) & (kept.class_ids[:, None] == gt_classes[None, :])
    return matches.sum(axis=0) > 1


def duplicate_stats(
    records: Sequence[ImageRecord],
    predictions: Sequence[ImagePredictions],
    conf: float = DUPLICATE_CONF,
    iou: float = DUPLICATE_IOU,
    classes: Sequence[int] | None = None,
) -> DuplicateStats:
    """The duplicate measure over a split: ``predictions`` (one per record, dataset class
    indices) against the records' ground truth, crowd/difficult boxes excluded; ``classes``
    restricts it to those dataset classes (the ones the model knows)."""
    if len(records) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(records)} images")
    wanted = None if classes is None else np.asarray(sorted(set(int(c) for c in classes)), dtype=np.int64)
    gts = duplicated = 0
    for record, pred in zip(records, predictions):
        scored = np.ones(len(record.class_ids), bool) if record.ignore is None else ~record.ignore.astype(bool)
        if wanted is not None:
            scored &= np.isin(record.class_ids, wanted)
        flags = duplicated_gts(record.boxes[scored], record.class_ids[scored], pred, conf, iou)
        gts += int(scored.sum())
        duplicated += int(flags.sum())
    return DuplicateStats(gts, duplicated, float(conf), float(iou))
