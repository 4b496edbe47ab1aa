""":class:`YoloxLoss`, the criterion a model carries: the detection loss and, for an end-to-end
model, the PSS loss, with every setting checked whenever it is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..assign.detector_targets import detector_nms_targets
from ..assign.inputs import AnchorSizes, AssignInputs
from ..assign.one_to_one import one_to_one_assign
from ..models.head import LevelOutput
from .detection import ASSIGNERS, FlatPredictions, detection_losses, flatten_predictions
from .pss import PSS_TARGETS, best_detector_scores, distill_pss_loss, flatten_pss, pss_loss

__all__ = ["YoloxLoss", "NORMALIZERS"]

#: what the summed terms are divided by (:class:`YoloxLoss`)
NORMALIZERS = ("batch", "running")

#: the keys of the detection loss dict (zeros when a frozen detector leaves its terms out)
_DETECTION_KEYS = ("total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss", "num_fg")


def _flag(name: str, value: Any) -> bool:
    if value not in (True, False):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in options:
            raise ValueError(f"{name} must be one of {', '.join(options)}, got {value!r}")
        return value

    return check


def _momentum(name: str, value: Any) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def _weight(name: str, value: Any) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _threshold(name: str, value: Any) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite IoU threshold >= 0 (above 1: nothing ignored), got {value!r}")
    return value


def _running(name: str, value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be None or a finite number > 0, got {value!r}")
    return value


#: every attribute of :class:`YoloxLoss` with the check its values pass, at construction and after
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "use_l1": _flag,
    "normalizer": _choice(NORMALIZERS),
    "momentum": _momentum,
    "running_positives": _running,
    "pss_weight": _weight,
    "detector_loss": _flag,
    "pss_targets": _choice(PSS_TARGETS),
    "assigner": _choice(ASSIGNERS),
    "ignore_iou": _threshold,
}


@dataclass
class YoloxLoss:
    """The YOLOX criterion as an object a model carries (``YOLOX.criterion``).

    ``use_l1`` switches on the L1 term; the trainer that owns the criterion turns it on for the
    last no-augmentation epochs, as the official recipe does (``model.head.use_l1 = True``, the
    official switch, sets this same flag).

    ``normalizer`` is what the summed terms are divided by: ``"batch"`` (official) the batch's
    positives, at least 1; ``"running"`` an exponential mean of that count (``momentum``, as
    detectron2's RetinaNet does), so that a batch of images without objects (positives 0, the
    objectness loss summed over every anchor) weighs as much as any other. The running mean is
    part of :meth:`state_dict`, so a resumed run continues it exactly.

    End-to-end models: ``pss_weight`` weighs the PSS term, ``pss_targets`` picks its positives
    (:data:`~yoloxkit.losses.pss.PSS_TARGETS`), ``detector_loss=False`` leaves the detector's
    terms out (a frozen detector). Every value is checked when it is set, in the constructor or
    later (``ValueError``).

    ``assigner`` picks the label assignment (:data:`~yoloxkit.losses.ASSIGNERS`): ``"simota"``
    (YOLOX, the default), or a row of the paper's roadmap: ``"yolov3"`` (best anchor by shape, for
    anchor-based heads; anchors whose predicted box has IoU > ``ignore_iou`` with a gt and that are
    not positive leave their objectness out), ``"centre"`` (the centre location on the FPN level of
    the object's scale range) and ``"centre3x3"`` (its 3x3 area).
    """

    use_l1: bool = False
    normalizer: str = "batch"
    momentum: float = 0.9
    running_positives: float | None = field(default=None)
    pss_weight: float = 1.0
    detector_loss: bool = True
    pss_targets: str = "detector"
    assigner: str = "simota"
    ignore_iou: float = 0.5

    def __setattr__(self, name: str, value: Any) -> None:
        check = _CHECKS.get(name)
        if check is None:
            raise AttributeError(f"YoloxLoss has no setting {name!r}; settings: {', '.join(_CHECKS)}")
        object.__setattr__(self, name, check(name, value))

    def _divisor(self, positives: torch.Tensor) -> torch.Tensor:
        count = max(float(positives), 1.0)
        if self.running_positives is None:
            self.running_positives = count
        else:
            self.running_positives = self.momentum * self.running_positives + (1 - self.momentum) * count
        return positives.new_tensor(self.running_positives)

    def __call__(
        self,
        levels: list[LevelOutput],
        targets: torch.Tensor,
        strides: tuple[int, ...],
        pss: list[torch.Tensor] | None = None,
        anchor_sizes: AnchorSizes = None,
    ) -> dict[str, torch.Tensor]:
        """The loss dict of one batch (:func:`~yoloxkit.losses.yolox_loss`), plus ``pss_loss``
        when the PSS logits ``pss`` (per level ``[B, 1, H, W]``) are given. ``levels`` and
        ``strides`` are per group; ``anchor_sizes`` one ``(w, h)`` per group for an anchor-based
        head (None: anchor-free)."""
        normalizer = self._divisor if self.normalizer == "running" else None
        preds = flatten_predictions(levels, strides, anchor_sizes)
        inputs = preds.assign_inputs(targets)  # the anchor grid and the split targets, once per step
        if pss is None or self.detector_loss:
            losses = detection_losses(preds, inputs, self.use_l1, normalizer, self.assigner, self.ignore_iou)
        else:
            losses = dict.fromkeys(_DETECTION_KEYS, preds.raw_reg.new_zeros(()))
        if pss is None:
            return losses
        term = self._pss_term(preds, inputs, flatten_pss(pss))
        losses["pss_loss"] = term
        losses["total_loss"] = losses["total_loss"] + self.pss_weight * term
        return losses

    def _pss_term(self, preds: FlatPredictions, inputs: AssignInputs, pss_logits: torch.Tensor) -> torch.Tensor:
        if self.pss_targets == "detector":
            scores, classes = best_detector_scores(preds.obj_logits, preds.cls_logits)
            survivors = detector_nms_targets(preds.boxes.detach(), scores, classes)
            return distill_pss_loss(pss_logits, scores, survivors)
        assignment = one_to_one_assign(inputs)
        return pss_loss(pss_logits, preds.obj_logits, preds.cls_logits, assignment, inputs.targets.classes)

    def state_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _CHECKS}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in _CHECKS:
            if key in state:
                setattr(self, key, state[key])
