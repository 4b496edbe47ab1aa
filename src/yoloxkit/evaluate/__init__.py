"""Evaluation: COCO AP (faster-coco-eval, pycocotools), Pascal VOC mAP, per-class tables, plots.

``evaluate(detector_or_predict_fn, data)`` runs a predictor over a :class:`DetectionData` split
and returns an :class:`EvalResult`; ``evaluate_predictions`` scores predictions already made.
"""

from .evaluator import METRICS, default_metric, evaluate, evaluate_predictions
from .predictions import ImagePredictions
from .report import EvalResult

__all__ = ["METRICS", "EvalResult", "ImagePredictions", "default_metric", "evaluate", "evaluate_predictions"]
