"""Evaluation: COCO AP (faster-coco-eval, pycocotools), Pascal VOC mAP, per-class tables, plots.

``evaluate(detector_or_predict_fn, data)`` runs a predictor over a :class:`DetectionData` split
and returns an :class:`EvalResult`; ``evaluate_predictions`` scores predictions already made;
``duplicate_stats`` is the duplicate measure (gt boxes found more than once) it reports.
"""

from .duplicates import DuplicateStats, duplicate_stats
from .evaluator import METRICS, default_metric, evaluate, evaluate_predictions
from .predictions import ImagePredictions
from .report import EvalResult

__all__ = ["METRICS", "DuplicateStats", "EvalResult", "ImagePredictions", "default_metric", "duplicate_stats", "evaluate",
           "evaluate_predictions"]
