"""Per-image matching of predictions to ground truth at one IoU threshold: the confusion matrix
and per-image error counts behind the evaluation plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from ..data.records import ImageRecord
from ..infer.defaults import DEFAULT_CONF
from .predictions import ImagePredictions

__all__ = ["ImageMatch", "confusion_matrix", "greedy_match", "match_predictions"]


def greedy_match(iou: np.ndarray, threshold: float) -> np.ndarray:
    """One-to-one pairs ``[M, 2]`` (row, col) of an IoU matrix, highest IoU first, IoU >= threshold."""
    rows, cols = np.nonzero(iou >= threshold)
    if rows.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(-iou[rows, cols], kind="mergesort")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            pairs.append((r, c))
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return box_iou(torch.from_numpy(a).double(), torch.from_numpy(b).double()).numpy()


@dataclass
class ImageMatch:
    """Outcome of one image at a score threshold: ``pred_is_tp`` per kept prediction, ``gt_found``
    per ground-truth box, and the kept predictions themselves."""

    predictions: ImagePredictions
    pred_is_tp: np.ndarray
    gt_found: np.ndarray
    gt_ignored: np.ndarray

    @property
    def tp(self) -> int:
        return int(self.pred_is_tp.sum())

    @property
    def fp(self) -> int:
        return int((~self.pred_is_tp).sum())

    @property
    def fn(self) -> int:
        return int((~self.gt_found & ~self.gt_ignored).sum())

    @property
    def f1(self) -> float:
        """F1 of this image (1.0 for an image with nothing to find and nothing predicted)."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 1.0 if denominator == 0 else 2 * self.tp / denominator


def match_predictions(
    record: ImageRecord, pred: ImagePredictions, conf: float = DEFAULT_CONF, iou_threshold: float = 0.5
) -> ImageMatch:
    """Class-aware one-to-one matching of the predictions with ``score >= conf``. Predictions that
    only overlap ignored (crowd/difficult) boxes are dropped rather than counted as errors."""
    kept = pred.select(pred.scores >= conf)
    ignored = np.zeros(len(record.class_ids), bool) if record.ignore is None else record.ignore.astype(bool)
    iou = _iou(kept.boxes.astype(np.float64), record.boxes.astype(np.float64))
    same_class = kept.class_ids[:, None] == record.class_ids[None, :]
    pairs = greedy_match(np.where(same_class & ~ignored[None, :], iou, 0.0), iou_threshold)
    is_tp = np.zeros(len(kept), bool)
    found = np.zeros(len(record.class_ids), bool)
    is_tp[pairs[:, 0]] = True
    found[pairs[:, 1]] = True
    on_ignored = (np.where(ignored[None, :], iou, 0.0) >= iou_threshold).any(axis=1) if len(kept) else np.zeros(0, bool)
    keep = is_tp | ~on_ignored
    return ImageMatch(kept.select(keep), is_tp[keep], found, ignored)


def confusion_matrix(
    records: Sequence[ImageRecord],
    predictions: Sequence[ImagePredictions],
    num_classes: int,
    conf: float = DEFAULT_CONF,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """``[C + 1, C + 1]`` counts, rows = predicted class, columns = true class; index ``C`` is the
    background (row C: missed boxes; column C: predictions matching no box). Matching is
    class-agnostic and one-to-one, highest IoU first; ignored boxes are left out."""
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    background = num_classes
    for record, pred in zip(records, predictions):
        kept = pred.select(pred.scores >= conf)
        ignored = np.zeros(len(record.class_ids), bool) if record.ignore is None else record.ignore.astype(bool)
        gt_boxes, gt_classes = record.boxes[~ignored], record.class_ids[~ignored]
        iou = _iou(kept.boxes.astype(np.float64), gt_boxes.astype(np.float64))
        pairs = greedy_match(iou, iou_threshold)
        np.add.at(matrix, (kept.class_ids[pairs[:, 0]], gt_classes[pairs[:, 1]]), 1)
        missed = np.setdiff1d(np.arange(len(gt_classes)), pairs[:, 1])
        np.add.at(matrix, (np.full(len(missed), background), gt_classes[missed]), 1)
        extra = np.setdiff1d(np.arange(len(kept)), pairs[:, 0])
        if len(extra) and ignored.any():
            on_crowd = _iou(kept.boxes[extra].astype(np.float64), record.boxes[ignored].astype(np.float64))
            extra = extra[~(on_crowd >= iou_threshold).any(axis=1)]
        np.add.at(matrix, (kept.class_ids[extra], np.full(len(extra), background)), 1)
    return matrix
