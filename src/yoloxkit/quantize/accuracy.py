"""The accuracy an export keeps: COCO AP (or VOC mAP) of an exported file on a validation split,
run by yoloxkit's own backend for that file, with the official evaluation thresholds."""

from __future__ import annotations

import os
from pathlib import Path

from ..data import DetectionData
from ..evaluate import evaluate
from ..infer import Detector

__all__ = ["EVAL_CONF", "EVAL_NMS", "file_accuracy"]

EVAL_CONF, EVAL_NMS = 0.01, 0.65  # the official evaluation thresholds


def file_accuracy(path: str | os.PathLike, backend: str, data: DetectionData, size: tuple[int, int],
                  progress: bool = False) -> float:
    """AP in percent (COCO AP@[.5:.95], or VOC mAP@0.5 for VOC data) of the export at ``path``
    run by ``backend`` at ``size`` on ``data``."""
    detector = Detector(weights=Path(path), backend=backend, size=size, conf=EVAL_CONF, nms=EVAL_NMS)
    result = evaluate(detector, data, conf=EVAL_CONF, nms=EVAL_NMS, progress=progress)
    return float(result.primary)
