"""YOLOX training losses: the detection terms (:mod:`.detection`), the PSS term of end-to-end
models (:mod:`.pss`) and :class:`YoloxLoss`, the criterion a model carries (:mod:`.criterion`)."""

from . import criterion, detection, pss
from .criterion import NORMALIZERS, YoloxLoss
from .detection import (
    ASSIGNERS,
    REG_WEIGHT,
    FlatPredictions,
    assign_targets,
    detection_losses,
    flatten_predictions,
    ground_truth,
    iou_loss,
    l1_targets,
    run_assigner,
    split_targets,
    yolox_loss,
    yolox_loss_flat,
)
from .pss import PSS_TARGETS, best_detector_scores, distill_pss_loss, flatten_pss, pss_loss

__all__ = [*detection.__all__, *pss.__all__, *criterion.__all__]
