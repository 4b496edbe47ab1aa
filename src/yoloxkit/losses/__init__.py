"""YOLOX training losses: the detection terms (:mod:`.detection`), the PSS term of end-to-end
models (:mod:`.pss`) and :class:`YoloxLoss`, the criterion a model carries (:mod:`.criterion`)."""

from .criterion import NORMALIZERS, YoloxLoss
from .detection import (
    REG_WEIGHT,
    FlatPredictions,
    assign_targets,
    detection_losses,
    flatten_predictions,
    ground_truth,
    iou_loss,
    l1_targets,
    split_targets,
    yolox_loss,
    yolox_loss_flat,
)
from .pss import PSS_TARGETS, best_detector_scores, distill_pss_loss, flatten_pss, pss_loss

__all__ = [
    "REG_WEIGHT",
    "YoloxLoss",
    "FlatPredictions",
    "flatten_predictions",
    "split_targets",
    "ground_truth",
    "assign_targets",
    "iou_loss",
    "l1_targets",
    "yolox_loss",
    "yolox_loss_flat",
    "detection_losses",
    "flatten_pss",
    "pss_loss",
    "best_detector_scores",
    "distill_pss_loss",
    "PSS_TARGETS",
    "NORMALIZERS",
]
