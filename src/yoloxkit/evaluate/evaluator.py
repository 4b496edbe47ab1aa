"""``evaluate()``: predictions over a split, then COCO or VOC metrics, optional plots.

Unreadable images (missing, truncated, not an image) are treated as training treats them: each is
skipped with a one-line warning naming it, and left out of the evaluation entirely, its ground
truth included, so the metrics are those of the split without it. They are listed in
:attr:`EvalResult.skipped_images` and counted in the report.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.records import DetectionData
from ..errors import DatasetError, ImageReadError, OutputError
from .coco import coco_category_ids, coco_detections, coco_evaluate, coco_ground_truth, coco_image_ids, summary_lines
from .duplicates import duplicate_stats
from .plots import write_plots
from .predictions import ImagePredictions
from .report import EvalResult
from .runner import ClassMapping, class_mapping, collect_predictions
from .voc import voc_evaluate

__all__ = ["METRICS", "default_metric", "evaluate", "evaluate_predictions"]

METRICS = ("auto", "coco", "voc")


def default_metric(data: DetectionData) -> str:
    """VOC data is scored the Pascal VOC way; COCO and YOLO-txt data the COCO way."""
    return "voc" if data.format == "voc" else "coco"


def _gt_counts(data: DetectionData) -> tuple[np.ndarray, np.ndarray]:
    """Per class: the ground-truth boxes that are scored, and the crowd/difficult ones, which the
    metrics ignore (a detection on them is neither a hit nor a false positive)."""
    scored = np.zeros(len(data.names), dtype=np.int64)
    ignored = np.zeros(len(data.names), dtype=np.int64)
    for record in data.records:
        flags = np.zeros(len(record.class_ids), bool) if record.ignore is None else record.ignore.astype(bool)
        np.add.at(scored, record.class_ids[~flags], 1)
        np.add.at(ignored, record.class_ids[flags], 1)
    return scored, ignored


def _percent(value: float) -> float | None:
    return None if np.isnan(value) else float(value) * 100.0


def evaluate_predictions(
    data: DetectionData,
    predictions: Sequence[ImagePredictions],
    metric: str = "auto",
    classes: Sequence[int] | None = None,
    engine: str = "faster-coco-eval",
    unknown_classes: Sequence[str] = (),
) -> EvalResult:
    """Score ``predictions`` (one per record, dataset class indices) on ``data``.

    ``metric``: ``"coco"``, ``"voc"`` or ``"auto"`` (:func:`default_metric`). ``classes`` restricts
    the evaluation to those dataset classes (the others are reported as ``None``). The result
    also carries the duplicate measure (:func:`~.duplicates.duplicate_stats`) on those classes.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of: {', '.join(METRICS)}")
    if len(predictions) != len(data.records):
        raise ValueError(f"{len(predictions)} predictions for {len(data.records)} images")
    metric = default_metric(data) if metric == "auto" else metric
    classes = list(range(len(data.names))) if classes is None else sorted(set(int(c) for c in classes))
    if metric == "coco":
        scores = _coco_scores(data, predictions, classes, engine)
    else:
        scores = _voc_scores(data, predictions, classes)
    return EvalResult(
        kind=metric,
        metrics=scores.metrics,
        per_class=scores.per_class,
        per_class_detail=scores.detail,
        summary=scores.summary,
        num_images=len(data.records),
        num_predictions=int(sum(len(p) for p in predictions)),
        unknown_classes=list(unknown_classes),
        duplicates=duplicate_stats(data.records, predictions, classes=classes),
    )


@dataclasses.dataclass
class _Scores:
    """One metric's results: summary metrics, AP per class name (``None``: not evaluated),
    per-class detail (ground-truth counts and further APs) and the printed summary lines."""

    metrics: dict[str, float]
    per_class: dict[str, float | None]
    detail: dict[str, dict[str, Any]]
    summary: list[str]


_COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _coco_scores(data: DetectionData, predictions: Sequence[ImagePredictions], classes: list[int],
                 engine: str) -> _Scores:
    """COCO AP (pycocotools-style) of ``classes``; percentages."""
    counts, ignored = _gt_counts(data)
    gt = coco_ground_truth(data)
    category_ids = coco_category_ids(data)
    image_ids = coco_image_ids(data, gt)
    detections = coco_detections(predictions, image_ids, category_ids)
    result = coco_evaluate(gt, detections, image_ids, [category_ids[k] for k in classes], engine=engine)
    position = {k: i for i, k in enumerate(classes)}
    per_class: dict[str, float | None] = {}
    detail: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(data.names):
        i = position.get(k)
        per_class[name] = None if i is None else _percent(result.per_class_ap[i])
        ap50 = None if i is None else _percent(result.per_class_ap50[i])
        detail[name] = {"gt": int(counts[k]), "ignored": int(ignored[k]), "AP50": ap50}
    metrics = {key: (float(v) * 100.0 if v >= 0 else 0.0) for key, v in zip(_COCO_STATS, result.stats)}
    return _Scores(metrics, per_class, detail, summary_lines(result.stats))


def _voc_scores(data: DetectionData, predictions: Sequence[ImagePredictions], classes: list[int]) -> _Scores:
    """Pascal VOC mAP (area, VOC07 11-point, 0.5:0.95) of ``classes``; percentages."""
    counts, ignored = _gt_counts(data)
    voc = voc_evaluate(data.records, predictions, len(data.names), classes=classes)
    per_class: dict[str, float | None] = {}
    detail: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(data.names):
        per_class[name] = _percent(voc.ap50[k])
        detail[name] = {
            "gt": int(counts[k]),
            "ignored": int(ignored[k]),
            "AP50_voc07": _percent(voc.ap50_voc07[k]),
            "AP50_95": _percent(voc.ap50_95[k]),
        }
    metrics = voc.summary()
    summary = [
        f" VOC mAP@0.5 (area under PR)      = {metrics['mAP50']:.2f}",
        f" VOC mAP@0.5 (VOC07 11-point)     = {metrics['mAP50_voc07']:.2f}",
        f" VOC mAP@[0.5:0.95] (area)        = {metrics['mAP50_95']:.2f}",
    ]
    return _Scores(metrics, per_class, detail, summary)


def _predict_fn(predictor: Any, conf: float | None, nms: float | None):
    if (conf is not None or nms is not None) and hasattr(predictor, "predict"):
        return lambda batch: predictor.predict(batch, conf=conf, nms=nms)
    if not callable(predictor):
        raise TypeError(f"predictor must be callable (a Detector or a function), got {type(predictor).__name__}")
    return predictor


class _SkipUnreadable:
    """Wraps a predict function: a batch that fails on an unreadable image is run again image by
    image; each unreadable image gets an empty placeholder result and is recorded (and warned
    about once) in :attr:`skipped`."""

    def __init__(self, predict: Any) -> None:
        self.predict = predict
        self.skipped: list[str] = []

    def __call__(self, batch: list) -> list:
        try:
            return list(self.predict(batch))
        except ImageReadError:
            pass
        results: list = []
        for path in batch:
            try:
                results.extend(self.predict([path]))
            except ImageReadError as exc:
                self.skipped.append(str(path))
                warnings.warn(f"{exc}; skipped: left out of the evaluation with its ground truth", stacklevel=2)
                results.append(_EMPTY)
        return results


_EMPTY = ImagePredictions(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def _without(data: DetectionData, skipped: Sequence[str], predictions: list[ImagePredictions]):
    """``data`` and ``predictions`` without the records of the ``skipped`` image paths."""
    gone = set(skipped)
    keep = [i for i, record in enumerate(data.records) if str(record.path) not in gone]
    if not keep:
        raise DatasetError(f"{data.root}: no image of split {data.split!r} can be read")
    subset = dataclasses.replace(data, records=[data.records[i] for i in keep])
    return subset, [predictions[i] for i in keep]


def evaluate(
    predictor: Any,
    data: DetectionData,
    *,
    names: Sequence[str] | None = None,
    metric: str = "auto",
    batch_size: int = 8,
    conf: float | None = None,
    nms: float | None = None,
    engine: str = "faster-coco-eval",
    plots_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> EvalResult:
    """Evaluate a detector on a dataset split.

    ``predictor`` is a :class:`yoloxkit.Detector` or any callable mapping a list of image paths to
    one result per image (with ``boxes`` xyxy in image pixels, ``scores``, ``class_ids``). Model
    classes are matched to ``data.names`` by name (``names``, else ``predictor.names``, else the
    dataset's own names). ``conf``/``nms`` override a Detector's thresholds (official evaluation:
    0.01 / 0.65; an NMS-free Detector, e.g. of an ``-e2e`` model, ignores ``nms`` and keeps its
    top ``max_dets`` (100, COCO's maxDets) per image). ``plots_dir`` writes PR curves, a confusion
    matrix and a worst-images gallery; when they cannot be written (a full disk), the result is
    still returned, with the reason in ``result.plots_error``.

    An image the predictor cannot read (:class:`~yoloxkit.errors.ImageReadError`) is skipped with
    a warning and left out of the metrics with its ground truth; the skipped paths are in
    ``result.skipped_images``. A split without any readable image raises :class:`DatasetError`.
    """
    model_names = list(names) if names is not None else getattr(predictor, "names", None) or list(data.names)
    mapping: ClassMapping = class_mapping(model_names, data)
    predict = _SkipUnreadable(_predict_fn(predictor, conf, nms))
    predictions = collect_predictions(predict, data, mapping, batch_size=batch_size, progress=progress)
    if predict.skipped:
        data, predictions = _without(data, predict.skipped, predictions)
    result = evaluate_predictions(
        data, predictions, metric=metric, classes=mapping.known, engine=engine,
        unknown_classes=mapping.unknown_names,
    )
    result.skipped_images = list(predict.skipped)
    nms_free = getattr(predictor, "nms_free", None)
    result.nms_free = nms_free if isinstance(nms_free, bool) else None
    if plots_dir is not None:
        try:
            result.plots = write_plots(data, predictions, Path(plots_dir), classes=mapping.known)
        except OutputError as exc:  # the metrics are worth more than the pictures: keep them
            result.plots_error = str(exc)
    return result
