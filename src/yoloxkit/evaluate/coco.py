"""COCO box AP: the 12 standard numbers and per-class AP.

faster-coco-eval (C++) is the default engine; pycocotools, the reference implementation, is
available as ``engine="pycocotools"`` and gives identical numbers. For COCO data the ground truth
is the dataset's own instances json (``iscrowd`` and segment ``area`` included); for other formats
it is built from the records (box area, ``ignore`` as ``iscrowd``).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.records import DetectionData
from ..errors import DatasetError
from ..text import read_text
from .predictions import ImagePredictions

__all__ = [
    "COCO_METRIC_KEYS",
    "COCO_SUMMARY_LABELS",
    "CocoMetrics",
    "coco_category_ids",
    "coco_detections",
    "coco_evaluate",
    "coco_ground_truth",
    "coco_image_ids",
    "summary_lines",
]

COCO_METRIC_KEYS: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)
# (title, IoU, area, maxDets) of each of the 12 numbers, in the standard summary order.
COCO_SUMMARY_LABELS: tuple[tuple[str, str, str, int], ...] = (
    ("Average Precision  (AP)", "0.50:0.95", "all", 100),
    ("Average Precision  (AP)", "0.50", "all", 100),
    ("Average Precision  (AP)", "0.75", "all", 100),
    ("Average Precision  (AP)", "0.50:0.95", "small", 100),
    ("Average Precision  (AP)", "0.50:0.95", "medium", 100),
    ("Average Precision  (AP)", "0.50:0.95", "large", 100),
    ("Average Recall     (AR)", "0.50:0.95", "all", 1),
    ("Average Recall     (AR)", "0.50:0.95", "all", 10),
    ("Average Recall     (AR)", "0.50:0.95", "all", 100),
    ("Average Recall     (AR)", "0.50:0.95", "small", 100),
    ("Average Recall     (AR)", "0.50:0.95", "medium", 100),
    ("Average Recall     (AR)", "0.50:0.95", "large", 100),
)
ENGINES = ("faster-coco-eval", "pycocotools")


def summary_lines(stats: Sequence[float]) -> list[str]:
    """The 12 summary lines in the layout pycocotools prints (values as fractions, -1 = n/a)."""
    return [
        f" {title} @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_dets:>3d} ] = {value:0.3f}"
        for (title, iou, area, max_dets), value in zip(COCO_SUMMARY_LABELS, stats)
    ]


def coco_category_ids(data: DetectionData) -> list[int]:
    """COCO category id of each dataset class (the json's ids for COCO data, else ``i + 1``)."""
    if data.category_ids:
        if len(data.category_ids) != len(data.names):
            raise DatasetError(
                f"{data.annotation_file or data.root}: {len(data.category_ids)} category ids for "
                f"{len(data.names)} class names"
            )
        return [int(c) for c in data.category_ids]
    return list(range(1, len(data.names) + 1))


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: annotation file not found")
    try:
        return json.loads(read_text(path, "COCO annotation file"))
    except ValueError as exc:
        raise DatasetError(f"{path}: cannot read COCO annotations ({exc})") from None


def coco_ground_truth(data: DetectionData) -> dict:
    """The COCO ground-truth dict for ``data``: its instances json, or one built from records."""
    if data.format == "coco" and data.annotation_file is not None:
        gt = _load_json(Path(data.annotation_file))
        for key in ("images", "annotations", "categories"):
            if key not in gt:
                raise DatasetError(f"{data.annotation_file}: no {key!r} list in the COCO annotations")
        return gt
    category_ids = coco_category_ids(data)
    images, annotations = [], []
    for index, record in enumerate(data.records):
        images.append({"id": index, "width": int(record.width), "height": int(record.height),
                       "file_name": Path(record.path).name})
        ignore = np.zeros(len(record.class_ids), bool) if record.ignore is None else record.ignore
        for box, class_id, crowd in zip(record.boxes.astype(np.float64), record.class_ids, ignore):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({
                "id": len(annotations) + 1, "image_id": index, "category_id": category_ids[int(class_id)],
                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": int(bool(crowd)),
            })
    categories = [{"id": cid, "name": name} for cid, name in zip(category_ids, data.names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_image_ids(data: DetectionData, gt: dict) -> list[int]:
    """The ground-truth image id of each record (matched by file name, else by ``image_id``)."""
    if not (data.format == "coco" and data.annotation_file is not None):
        return list(range(len(data.records)))
    by_name = {Path(img["file_name"]).name: img["id"] for img in gt["images"]}
    known_ids = {img["id"] for img in gt["images"]}
    ids = []
    for record in data.records:
        image_id = by_name.get(Path(record.path).name)
        if image_id is None and record.image_id in known_ids:
            image_id = record.image_id
        if image_id is None:
            raise DatasetError(f"{data.annotation_file}: no image entry for {Path(record.path).name}")
        ids.append(image_id)
    return ids


def coco_detections(
    predictions: Sequence[ImagePredictions], image_ids: Sequence[int], category_ids: Sequence[int]
) -> list[dict]:
    """COCO results json entries: ``bbox`` is ``[x, y, w, h]`` in original pixels."""
    results = []
    for pred, image_id in zip(predictions, image_ids):
        boxes = pred.boxes.astype(np.float64)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        for box, score, class_id in zip(xywh.tolist(), pred.scores.tolist(), pred.class_ids.tolist()):
            results.append({"image_id": image_id, "category_id": int(category_ids[class_id]),
                            "bbox": box, "score": float(score)})
    return results


@dataclass
class CocoMetrics:
    """``stats``: the 12 numbers as fractions (-1 = not defined); ``per_class_ap[k]``: AP@[.5:.95]
    of class k (NaN when the class has no ground truth in the evaluated images or was not evaluated);
    ``precision``: COCOeval's ``[T, R, K, A, M]`` array (K over ``category_ids``) or None."""

    stats: np.ndarray
    per_class_ap: np.ndarray
    per_class_ap50: np.ndarray
    precision: np.ndarray | None
    category_ids: list[int]


def _gt_has_category(gt: dict, image_ids: set, category_ids: Sequence[int]) -> np.ndarray:
    present = {a["category_id"] for a in gt["annotations"] if a["image_id"] in image_ids}
    return np.array([cid in present for cid in category_ids], dtype=bool)


def _run(engine: str, gt: dict, detections: list[dict], image_ids: list[int], category_ids: list[int]):
    detections = [dict(d) for d in detections]  # both engines add keys to the result dicts
    quiet = contextlib.redirect_stdout(io.StringIO())
    if engine == "faster-coco-eval":
        from faster_coco_eval import COCO, COCOeval_faster

        def silent(*_args, **_kwargs):
            return None

        coco_gt = COCO(gt, print_function=silent)
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=silent)
    elif engine == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with quiet:
            coco_gt = COCO()
            coco_gt.dataset = gt
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
    else:
        raise ValueError(f"unknown COCO engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    evaluator.params.imgIds = image_ids
    evaluator.params.catIds = category_ids
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats[:12], dtype=np.float64), np.asarray(evaluator.eval["precision"])


def coco_evaluate(
    gt: dict,
    detections: list[dict],
    image_ids: Sequence[int],
    category_ids: Sequence[int],
    engine: str = "faster-coco-eval",
) -> CocoMetrics:
    """Run COCO box evaluation of ``detections`` against ``gt`` over the given images/categories.

    With no detections at all the result is AP 0 (defined classes) instead of an exception.
    """
    image_ids = sorted(dict.fromkeys(int(i) for i in image_ids))
    category_ids = [int(c) for c in category_ids]
    has_gt = _gt_has_category(gt, set(image_ids), category_ids)
    if not detections:
        any_gt = bool(has_gt.any())
        stats = np.full(12, 0.0 if any_gt else -1.0)
        zeros = np.where(has_gt, 0.0, np.nan)
        return CocoMetrics(stats, zeros, zeros.copy(), None, category_ids)
    stats, precision = _run(engine, gt, detections, image_ids, sorted(category_ids))
    # precision is indexed by the sorted category ids; reorder to the caller's order.
    sorted_ids = sorted(category_ids)
    index = [sorted_ids.index(c) for c in category_ids]
    precision = precision[:, :, index]
    per_class = np.full(len(category_ids), np.nan)
    per_class50 = np.full(len(category_ids), np.nan)
    t50 = 0  # IoU thresholds are 0.50:0.05:0.95
    for k in range(len(category_ids)):
        p = precision[:, :, k, 0, -1]
        if (p > -1).any():
            per_class[k] = float(p[p > -1].mean())
        p50 = precision[t50, :, k, 0, -1]
        if (p50 > -1).any():
            per_class50[k] = float(p50[p50 > -1].mean())
    return CocoMetrics(stats, per_class, per_class50, precision, category_ids)
