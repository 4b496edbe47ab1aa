"""Merging the boxes of overlapping tiles into one set of detections per image (pure functions).

An object cut by a tile border is seen twice: whole in one tile, cut in its neighbour. Greedy
non-maximum merging (NMM, as in SAHI) visits the boxes of a class by decreasing score; each box
not yet taken takes every later box that matches it and becomes their enclosing box, keeping its
own (the best) score. Greedy NMS is the same grouping but keeps the best box as it is. Two boxes
match when their overlap exceeds a threshold; the overlap is the intersection over the smaller
box (IoS), so the cut box, which lies inside the whole one, matches it even when their IoU is low,
or the plain IoU. ``benchmarks/bench_sliced.py`` compares them. :func:`add_unmatched` puts the
whole image's boxes first and adds only the tile boxes that match none of them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_areas", "pairwise_overlap", "greedy_groups", "merge_detections", "add_unmatched"]


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas of xyxy ``boxes [N, 4]`` (0 for a box with a negative side)."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def pairwise_overlap(box: np.ndarray, boxes: np.ndarray, metric: str = "ios") -> np.ndarray:
    """Overlap of one xyxy ``box`` with each row of ``boxes [N, 4]``: intersection over the
    smaller area (``"ios"``) or over the union (``"iou"``); 0 where a box has no area."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    area = max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)
    areas = box_areas(boxes)
    denominator = np.minimum(area, areas) if metric == "ios" else area + areas - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, inter / denominator, 0.0)


def greedy_groups(boxes: np.ndarray, scores: np.ndarray, metric: str = "ios", threshold: float = 0.5) -> np.ndarray:
    """Greedy grouping of one class's boxes: ``owner[i]`` is the index of the box that ``i``
    merges into (``owner[i] == i`` for the boxes kept). A box is kept when no kept box of a
    higher score (ties: the earlier index) matches it; each other box belongs to the first kept
    box, in score order, that matches it with an overlap above ``threshold``."""
    order = np.argsort(-scores, kind="stable")
    sorted_boxes = boxes[order].astype(np.float64)
    owner_sorted = np.full(len(order), -1, dtype=np.int64)
    for i in range(len(order)):
        if owner_sorted[i] >= 0:
            continue
        owner_sorted[i] = i
        rest = np.flatnonzero(owner_sorted[i + 1:] < 0) + i + 1
        if rest.size:
            matched = rest[pairwise_overlap(sorted_boxes[i], sorted_boxes[rest], metric) > threshold]
            owner_sorted[matched] = i
    owner = np.empty(len(order), dtype=np.int64)
    owner[order] = order[owner_sorted]
    return owner


def merge_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    method: str = "nmm",
    metric: str = "ios",
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-aware merge of detections gathered from several tiles: ``(boxes, scores, class_ids)``
    sorted by decreasing score. ``method`` ``"nmm"`` replaces each kept box by the box enclosing
    its group; ``"nms"`` keeps it as it is."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    kept_boxes, kept_scores, kept_ids = [], [], []
    for class_id in np.unique(class_ids):
        rows = np.flatnonzero(class_ids == class_id)
        owner = greedy_groups(boxes[rows], scores[rows], metric, threshold)
        leaders = np.flatnonzero(owner == np.arange(len(rows)))
        merged = boxes[rows[leaders]].copy()
        if method == "nmm":
            position = np.searchsorted(leaders, owner)  # each box's group, by its leader's rank
            np.minimum.at(merged[:, 0], position, boxes[rows, 0])
            np.minimum.at(merged[:, 1], position, boxes[rows, 1])
            np.maximum.at(merged[:, 2], position, boxes[rows, 2])
            np.maximum.at(merged[:, 3], position, boxes[rows, 3])
        kept_boxes.append(merged)
        kept_scores.append(scores[rows[leaders]])
        kept_ids.append(np.full(len(leaders), class_id, dtype=np.int64))
    if not kept_boxes:
        return boxes[:0], scores[:0], class_ids[:0]
    out_boxes, out_scores, out_ids = np.concatenate(kept_boxes), np.concatenate(kept_scores), np.concatenate(kept_ids)
    order = np.argsort(-out_scores, kind="stable")
    return out_boxes[order], out_scores[order], out_ids[order]


def add_unmatched(
    primary: tuple[np.ndarray, np.ndarray, np.ndarray],
    secondary: tuple[np.ndarray, np.ndarray, np.ndarray],
    metric: str = "iou",
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``primary`` detection, plus each ``secondary`` one that matches no ``primary`` box
    of its class (overlap above ``threshold``); sorted by decreasing score."""
    boxes, scores, class_ids = (np.asarray(a) for a in primary)
    extra_boxes, extra_scores, extra_ids = (np.asarray(a) for a in secondary)
    keep = np.ones(len(extra_boxes), dtype=bool)
    for index in range(len(extra_boxes)):
        same = class_ids == extra_ids[index]
        if same.any() and (pairwise_overlap(extra_boxes[index], boxes[same], metric) > threshold).any():
            keep[index] = False
    out_boxes = np.concatenate([boxes.reshape(-1, 4), extra_boxes[keep].reshape(-1, 4)]).astype(np.float32)
    out_scores = np.concatenate([scores, extra_scores[keep]]).astype(np.float32)
    out_ids = np.concatenate([class_ids, extra_ids[keep]]).astype(np.int64)
    order = np.argsort(-out_scores, kind="stable")
    return out_boxes[order], out_scores[order], out_ids[order]
