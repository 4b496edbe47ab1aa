"""Pascal VOC average precision: mAP@0.5 (area under the PR curve and the VOC07 11-point
variant) and the mean over IoU 0.50:0.95.

Matching follows the VOC devkit: detections of one class are visited in descending score
order; each is compared with the ground-truth box of the same class it overlaps most. If that
overlap reaches the IoU threshold the detection is ignored when the box is *difficult*, a true
positive when the box is still unclaimed, and a false positive otherwise (a duplicate). Boxes are
continuous pixel coordinates (no VOC ``+1`` pixel convention), so the IoU is the same one the COCO
evaluator uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from ..data.records import ImageRecord
from .predictions import ImagePredictions

__all__ = [
    "IOU_THRESHOLDS",
    "VocMetrics",
    "ap_area",
    "ap_voc07",
    "match_image",
    "precision_recall",
    "voc_evaluate",
]

IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.linspace(0.5, 0.95, 10), 2).tolist())

TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1


def ap_area(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC2010+ "all points" AP).

    ``recall`` ascending, ``precision`` aligned with it (one value per ranked detection).
    """
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def ap_voc07(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2007 11-point AP: mean over recall levels 0, 0.1, ..., 1 of the best precision at or
    beyond that recall (0 where the recall is never reached)."""
    total = 0.0
    for level in np.linspace(0.0, 1.0, 11):
        reached = precision[recall >= level]
        total += float(reached.max()) if reached.size else 0.0
    return total / 11.0


def match_image(
    det_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    gt_ignore: np.ndarray,
    thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> np.ndarray:
    """Label the detections of one class in one image, VOC style, at each IoU threshold.

    ``det_boxes`` must be sorted by descending score. Returns ``[len(thresholds), D]`` int8 with
    1 = true positive, 0 = false positive, -1 = ignored (best overlap is a difficult box).
    """
    num_dets = len(det_boxes)
    labels = np.zeros((len(thresholds), num_dets), dtype=np.int8)
    if num_dets == 0 or len(gt_boxes) == 0:
        return labels
    iou = box_iou(torch.from_numpy(det_boxes).double(), torch.from_numpy(gt_boxes).double()).numpy()
    best_gt = iou.argmax(axis=1)
    best_iou = iou[np.arange(num_dets), best_gt]
    best_is_ignored = gt_ignore[best_gt]
    for t, threshold in enumerate(thresholds):
        hit = best_iou >= threshold
        labels[t, hit & best_is_ignored] = IGNORED
        candidates = np.flatnonzero(hit & ~best_is_ignored)
        # The first (highest-scoring) detection that claims a box is the true positive.
        _, first = np.unique(best_gt[candidates], return_index=True)
        labels[t, candidates[first]] = TRUE_POSITIVE
    return labels


def precision_recall(scores: np.ndarray, labels: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank detections by score and return the (recall, precision) curve, ignored ones dropped."""
    keep = labels != IGNORED
    order = np.argsort(-scores[keep], kind="mergesort")
    tp = (labels[keep][order] == TRUE_POSITIVE).astype(np.float64)
    cum_tp = np.cumsum(tp)
    cum_fp = np.cumsum(1.0 - tp)
    recall = cum_tp / max(num_gt, 1)
    precision = cum_tp / np.maximum(cum_tp + cum_fp, np.finfo(np.float64).eps)
    return recall, precision


@dataclass
class VocMetrics:
    """Per-class VOC results. ``ap[t, k]`` is the area AP of class k at ``thresholds[t]``; NaN where
    the class has no (non-difficult) ground truth or is excluded from evaluation."""

    thresholds: tuple[float, ...]
    ap: np.ndarray  # [T, K]
    ap50_voc07: np.ndarray  # [K]
    num_gt: np.ndarray  # [K] non-difficult ground-truth boxes
    # PR curve at IoU 0.5 per class: (recall, precision, scores) for plots.
    curves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def ap50(self) -> np.ndarray:
        return self.ap[self.thresholds.index(0.5)]

    @property
    def ap50_95(self) -> np.ndarray:
        return self.ap.mean(axis=0)

    def summary(self) -> dict[str, float]:
        """``mAP50`` / ``mAP50_voc07`` / ``mAP50_95`` in percent (0 when no class is evaluable)."""

        def mean(values: np.ndarray) -> float:
            valid = values[~np.isnan(values)]
            return float(valid.mean() * 100) if valid.size else 0.0

        return {"mAP50": mean(self.ap50), "mAP50_voc07": mean(self.ap50_voc07), "mAP50_95": mean(self.ap50_95)}


def voc_evaluate(
    records: Sequence[ImageRecord],
    predictions: Sequence[ImagePredictions],
    num_classes: int,
    thresholds: Sequence[float] = IOU_THRESHOLDS,
    classes: Sequence[int] | None = None,
) -> VocMetrics:
    """Evaluate ``predictions`` (aligned with ``records``) the Pascal VOC way.

    ``classes`` restricts the evaluation to these class indices (others get NaN). Ground truth
    flagged in ``ImageRecord.ignore`` (VOC difficult, COCO iscrowd) is neither required nor
    penalised.
    """
    if len(records) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(records)} images")
    thresholds = tuple(float(t) for t in thresholds)
    evaluated = set(range(num_classes) if classes is None else classes)
    scores, labels, num_gt = _match_detections(records, predictions, num_classes, thresholds, evaluated)
    ap = np.full((len(thresholds), num_classes), np.nan)
    ap07 = np.full(num_classes, np.nan)
    curves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    t50 = thresholds.index(0.5) if 0.5 in thresholds else 0
    empty = np.zeros(0)
    for k in range(num_classes):
        if k not in evaluated or num_gt[k] == 0:
            curves.append((empty, empty, empty))
            continue
        class_scores = np.concatenate(scores[k]) if scores[k] else np.zeros(0, np.float32)
        class_labels = (
            np.concatenate(labels[k], axis=1) if labels[k] else np.zeros((len(thresholds), 0), np.int8)
        )
        for t in range(len(thresholds)):
            recall, precision = precision_recall(class_scores, class_labels[t], int(num_gt[k]))
            ap[t, k] = ap_area(recall, precision)
            if t == t50:
                ap07[k] = ap_voc07(recall, precision)
                kept = class_labels[t] != IGNORED
                ranked = np.sort(class_scores[kept])[::-1]
                curves.append((recall, precision, ranked))
    return VocMetrics(thresholds=thresholds, ap=ap, ap50_voc07=ap07, num_gt=num_gt, curves=curves)


def _match_detections(
    records: Sequence[ImageRecord],
    predictions: Sequence[ImagePredictions],
    num_classes: int,
    thresholds: tuple[float, ...],
    evaluated: set[int],
) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]], np.ndarray]:
    """Per class, per image: detection scores (descending) and their ``[T, D]`` match labels
    (:func:`match_image`); and per class the number of non-ignored ground-truth boxes."""
    scores: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    labels: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    num_gt = np.zeros(num_classes, dtype=np.int64)
    for record, pred in zip(records, predictions):
        gt_ignore_all = (
            np.zeros(len(record.class_ids), dtype=bool) if record.ignore is None else record.ignore.astype(bool)
        )
        np.add.at(num_gt, record.class_ids[~gt_ignore_all], 1)
        for k in np.union1d(np.unique(record.class_ids), np.unique(pred.class_ids)).astype(np.int64):
            if k not in evaluated:
                continue
            det_mask = pred.class_ids == k
            order = np.argsort(-pred.scores[det_mask], kind="mergesort")
            gt_mask = record.class_ids == k
            labels[k].append(match_image(
                pred.boxes[det_mask][order].astype(np.float64),
                record.boxes[gt_mask].astype(np.float64),
                gt_ignore_all[gt_mask],
                thresholds,
            ))
            scores[k].append(pred.scores[det_mask][order])
    return scores, labels, num_gt
