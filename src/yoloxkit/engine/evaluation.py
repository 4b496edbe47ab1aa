"""Evaluation during training: the EMA model wrapped as a Detector, scored by
:func:`yoloxkit.evaluate.evaluate` with the metric of the data format."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from ..data import DetectionData
from ..evaluate import EvalResult, evaluate
from ..infer import Detector
from ..infer.defaults import EVAL_CONF, EVAL_NMS

__all__ = ["evaluate_split", "evaluate_model", "metric_name"]


def evaluate_split(
    model: nn.Module,
    names: list[str],
    data: DetectionData,
    size: int,
    conf: float = EVAL_CONF,
    nms: float = EVAL_NMS,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
) -> EvalResult:
    """The whole :class:`~yoloxkit.evaluate.EvalResult` of ``model`` on ``data`` (COCO metrics
    for COCO and YOLO-txt data, VOC for VOC data). Unreadable images are skipped and listed in
    the result. ``model`` runs in eval mode and is put back in the mode it had."""
    was_training = model.training
    model.eval()
    try:
        detector = Detector.from_model(model, names, size, conf=conf, nms=nms, device=str(device))
        with warnings.catch_warnings():  # the caller reports result.skipped_images, once each
            warnings.filterwarnings("ignore", message=".*left out of the evaluation")
            return evaluate(detector, data, names=names, batch_size=batch_size, progress=False)
    finally:
        model.train(was_training)


def evaluate_model(model: nn.Module, names: list[str], data: DetectionData, size: int, **options: Any) -> tuple[float, str, dict]:
    """Return ``(primary metric in percent, its name, all metrics)``: COCO AP for COCO and
    YOLO-txt data, VOC mAP50 for VOC data; ``options`` as for :func:`evaluate_split`."""
    result = evaluate_split(model, names, data, size, **options)
    return float(result.primary), metric_name(result), dict(result.metrics)


def metric_name(result: EvalResult) -> str:
    """The name of the primary metric of ``result``: ``mAP50`` for VOC, ``AP`` for COCO."""
    return "mAP50" if result.kind == "voc" else "AP"
