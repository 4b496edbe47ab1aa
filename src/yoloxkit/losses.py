"""YOLOX training losses: IoU, objectness, class and L1 terms over SimOTA positives.

:func:`yolox_loss` is what the model's train-mode forward returns. Every term is summed
over its elements and divided by the number of positives in the batch (on this rank), as
the official head does; the IoU term is weighted by 5. :class:`YoloxLoss` can instead divide by
a running mean of that count (``normalizer="running"``, the fine-tuning recipe): a batch with
few or no positives then no longer scales its objectness loss up by a hundredfold.

End-to-end models add the PSS branch's loss: a binary cross-entropy on the final score
``d·σ(pss)``, where ``d = σ(obj)·σ(cls)`` is the detector's score taken detached (the
stop-gradient), target 1 at the positives and 0 at every other anchor, leaving out the constant
``-log d`` of the positives. Anchors the detector already scores near 0 cost nearly nothing, so
the loss needs no sampling or focal weighting: it teaches the branch to keep one anchor per object
and silence the duplicates around it. The positives are the detector's own NMS survivors
(:func:`distill_pss_loss`, :mod:`yoloxkit.assign.detector_targets`; divided by their number) or,
with ``pss_targets="gt"``, each gt's one-to-one anchor (:func:`pss_loss`,
:mod:`yoloxkit.assign.one_to_one`; divided by the number of gts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .assign.geometry import aligned_iou_cxcywh, anchor_centers
from .assign.detector_targets import detector_nms_targets
from .assign.one_to_one import OneToOneAssignment, one_to_one_assign
from .assign.simota import Assignment, simota_assign
from .errors import DatasetError
from .models.head import LevelOutput

__all__ = [
    "REG_WEIGHT",
    "YoloxLoss",
    "FlatPredictions",
    "flatten_predictions",
    "split_targets",
    "assign_targets",
    "iou_loss",
    "l1_targets",
    "yolox_loss",
    "yolox_loss_flat",
    "flatten_pss",
    "pss_loss",
    "best_detector_scores",
    "distill_pss_loss",
    "PSS_TARGETS",
    "NORMALIZERS",
]

REG_WEIGHT = 5.0


class FlatPredictions:
    """Head outputs flattened over levels: ``A`` anchors in model output order."""

    def __init__(self, levels: list[LevelOutput], strides: tuple[int, ...]) -> None:
        reg = [r.flatten(2) for r, _, _ in levels]
        obj = [o.flatten(2) for _, o, _ in levels]
        cls = [c.flatten(2) for _, _, c in levels]
        self.raw_reg = torch.cat(reg, dim=2).transpose(1, 2).float()  # [B, A, 4]
        self.obj_logits = torch.cat(obj, dim=2)[:, 0].float()  # [B, A]
        self.cls_logits = torch.cat(cls, dim=2).transpose(1, 2).float()  # [B, A, C]
        self.shapes = [tuple(r.shape[-2:]) for r, _, _ in levels]
        self.level_strides = tuple(strides)
        self.grid, self.strides, self.centers = anchor_centers(
            self.shapes, self.level_strides, torch.float32, self.raw_reg.device
        )
        stride = self.strides[:, None]
        self.boxes = torch.cat(
            [(self.raw_reg[..., :2] + self.grid) * stride, torch.exp(self.raw_reg[..., 2:]) * stride], dim=-1
        )  # [B, A, 4] decoded (cx, cy, w, h)

    @property
    def num_classes(self) -> int:
        return self.cls_logits.shape[-1]


def flatten_predictions(levels: list[LevelOutput], strides: tuple[int, ...]) -> FlatPredictions:
    """Flatten per-level head outputs and decode the boxes (gradients flow through)."""
    return FlatPredictions(levels, strides)


def split_targets(targets: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split padded targets ``[B, max_labels, 5]`` into boxes, classes and a validity mask.

    A row counts when the image's first ``n`` rows have a non-zero sum (``n`` = number of
    such rows), the padding convention of the official loader. The label axis is trimmed
    to the largest ``n`` in the batch. Raises :class:`DatasetError` for class ids outside
    ``[0, num_classes)``.
    """
    if targets.dim() != 3 or targets.shape[-1] != 5:
        raise DatasetError(f"targets: expected shape [B, max_labels, 5], got {list(targets.shape)}")
    counts = (targets.sum(dim=2) > 0).sum(dim=1)  # [B]
    max_count = int(counts.max()) if counts.numel() else 0
    targets = targets[:, :max_count].float()
    valid = torch.arange(max_count, device=targets.device) < counts.unsqueeze(1)
    classes = targets[..., 0].long()
    if valid.any():
        bad = classes[valid]
        if (bad < 0).any() or (bad >= num_classes).any():
            raise DatasetError(
                f"targets: class id {int(bad[(bad < 0) | (bad >= num_classes)][0])} outside 0..{num_classes - 1}"
            )
    return targets[..., 1:5], classes, valid


def assign_targets(preds: FlatPredictions, targets: torch.Tensor) -> tuple[Assignment, torch.Tensor, torch.Tensor]:
    """SimOTA assignment for a batch; returns it with the trimmed gt boxes and classes."""
    gt_boxes, gt_classes, valid = split_targets(targets, preds.num_classes)
    assignment = simota_assign(
        preds.boxes.detach(),
        preds.obj_logits.detach(),
        preds.cls_logits.detach(),
        gt_boxes,
        gt_classes,
        valid,
        preds.shapes,
        preds.level_strides,
    )
    return assignment, gt_boxes, gt_classes


def iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-box IoU loss ``1 - IoU**2`` of matching (cx, cy, w, h) rows."""
    return 1 - aligned_iou_cxcywh(pred, target) ** 2


def l1_targets(gt: torch.Tensor, grid: torch.Tensor, stride: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Regression targets in the raw output space: cell offsets and log sizes in strides.

    ``gt`` ``[N, 4]`` (cx, cy, w, h), ``grid`` ``[N, 2]``, ``stride`` ``[N]``.
    """
    stride = stride[:, None]
    return torch.cat([gt[:, :2] / stride - grid, torch.log(gt[:, 2:] / stride + eps)], dim=1)


def yolox_loss(
    levels: list[LevelOutput],
    targets: torch.Tensor,
    strides: tuple[int, ...],
    use_l1: bool = False,
    normalizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """The YOLOX training loss for one batch.

    Args:
        levels: the head's ``forward_levels`` output, per level
            ``(reg [B,4,H,W], obj_logits [B,1,H,W], cls_logits [B,C,H,W])``.
        targets: ``[B, max_labels, 5]`` rows ``(class, cx, cy, w, h)`` in input pixels,
            all-zero rows are padding.
        strides: the stride of each level.
        use_l1: add the L1 term on raw regression outputs (the no-augmentation phase).
        normalizer: maps the batch's number of positives to the divisor of every term;
            default ``max(1, positives)`` (the official one).

    Returns ``total_loss, iou_loss`` (already weighted by 5), ``conf_loss, cls_loss,
    l1_loss`` (zero when ``use_l1`` is off) and ``num_fg`` (positives per gt, detached),
    all as tensors. Terms are summed and divided by ``max(1, number of positives)``.
    """
    return yolox_loss_flat(flatten_predictions(levels, strides), targets, use_l1, normalizer)


def yolox_loss_flat(
    preds: FlatPredictions,
    targets: torch.Tensor,
    use_l1: bool = False,
    normalizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`yolox_loss` on already flattened predictions."""
    assignment, gt_boxes, gt_classes = assign_targets(preds, targets)
    fg = assignment.fg_mask
    batch_index, anchor_index = fg.nonzero(as_tuple=True)
    gt_index = assignment.matched_gt[batch_index, anchor_index]
    matched_boxes = gt_boxes[batch_index, gt_index]  # [F, 4]
    matched_classes = gt_classes[batch_index, gt_index]
    positives = assignment.num_fg.float()
    num_fg = normalizer(positives.detach()) if normalizer is not None else positives.clamp(min=1)

    loss_iou = iou_loss(preds.boxes[fg], matched_boxes).sum() / num_fg
    loss_obj = F.binary_cross_entropy_with_logits(preds.obj_logits, fg.float(), reduction="sum") / num_fg
    cls_target = F.one_hot(matched_classes, preds.num_classes).float() * assignment.matched_iou[fg].unsqueeze(-1)
    loss_cls = F.binary_cross_entropy_with_logits(preds.cls_logits[fg], cls_target, reduction="sum") / num_fg
    if use_l1:
        target = l1_targets(matched_boxes, preds.grid[anchor_index], preds.strides[anchor_index])
        loss_l1 = F.l1_loss(preds.raw_reg[fg], target, reduction="sum") / num_fg
    else:
        loss_l1 = preds.raw_reg.new_zeros(())

    weighted_iou = REG_WEIGHT * loss_iou
    total = weighted_iou + loss_obj + loss_cls + loss_l1
    return {
        "total_loss": total,
        "iou_loss": weighted_iou,
        "conf_loss": loss_obj,
        "cls_loss": loss_cls,
        "l1_loss": loss_l1,
        "num_fg": (assignment.num_fg.float() / assignment.num_gt.clamp(min=1).float()).detach(),
    }


def flatten_pss(pss_levels: list[torch.Tensor]) -> torch.Tensor:
    """Per-level PSS logits ``[B, 1, H, W]`` flattened to ``[B, A]`` in anchor order."""
    return torch.cat([p.flatten(2) for p in pss_levels], dim=2)[:, 0].float()


def _final_score_bce(pss_logits: torch.Tensor, score: torch.Tensor, fg: torch.Tensor, positive_weight: float) -> torch.Tensor:
    """Summed BCE of ``score·σ(pss)`` against ``fg`` (module docstring), ``score`` detached."""
    log_pss = F.logsigmoid(pss_logits)
    # At a positive, -log(d·σ(pss)) = -log d - log σ(pss): the constant -log d is left out, so the
    # loss is 0 at its optimum (gradients unchanged).
    log_not_p = torch.log1p(-(score * log_pss.exp()).clamp(max=1 - 1e-6))
    return -torch.where(fg, positive_weight * log_pss, log_not_p).sum()


def _detector_scores(obj_logits: torch.Tensor, cls_logits: torch.Tensor) -> torch.Tensor:
    return obj_logits.detach().float().sigmoid().unsqueeze(-1) * cls_logits.detach().float().sigmoid()


def pss_loss(
    pss_logits: torch.Tensor,
    obj_logits: torch.Tensor,
    cls_logits: torch.Tensor,
    assignment: OneToOneAssignment,
    gt_classes: torch.Tensor,
    positive_weight: float = 1.0,
) -> torch.Tensor:
    """The PSS loss of a batch on ground-truth one-to-one targets (module docstring): BCE of
    ``σ(obj)·σ(cls)·σ(pss)`` (detector part detached), summed over anchors, divided by
    ``max(1, gts)``.

    ``pss_logits``/``obj_logits`` ``[B, A]``, ``cls_logits`` ``[B, A, C]``, ``gt_classes`` ``[B, G]``;
    ``positive_weight`` multiplies the positives' terms.
    """
    detector = _detector_scores(obj_logits, cls_logits)
    best = detector.max(dim=-1).values  # [B, A]
    fg = assignment.fg_mask
    if gt_classes.shape[1]:
        own_class = gt_classes.long().clamp(min=0).gather(1, assignment.matched_gt)  # [B, A]
        own = detector.gather(2, own_class.unsqueeze(-1)).squeeze(-1)
        score = torch.where(fg, own, best)
    else:
        score = best
    loss = _final_score_bce(pss_logits, score, fg, positive_weight)
    return loss / assignment.num_gt.clamp(min=1).float()


def best_detector_scores(obj_logits: torch.Tensor, cls_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each anchor's best class and its detector score ``σ(obj)·σ(cls)``, detached: ``[B, A]`` each
    (scores first), from ``obj_logits`` ``[B, A]`` and ``cls_logits`` ``[B, A, C]``."""
    return _detector_scores(obj_logits, cls_logits).max(dim=-1)


def distill_pss_loss(pss_logits: torch.Tensor, scores: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """The PSS loss on the detector's own NMS survivors ``fg`` ``[B, A]``
    (:func:`~yoloxkit.assign.detector_targets.detector_nms_targets`): the same BCE on each anchor's
    best-class detector score ``scores`` (:func:`best_detector_scores`), divided by
    ``max(1, positives)``."""
    return _final_score_bce(pss_logits, scores, fg, 1.0) / max(1, int(fg.sum()))


#: what the PSS branch learns to keep: ``"detector"`` the detector's own NMS survivors (default),
#: ``"gt"`` the one-to-one (Hungarian) assignment of the ground truth
PSS_TARGETS = ("detector", "gt")


NORMALIZERS = ("batch", "running")


@dataclass
class YoloxLoss:
    """The YOLOX criterion as an object a model carries (``YOLOX.criterion``).

    ``use_l1`` switches on the L1 term; the trainer that owns the criterion turns it on for the
    last no-augmentation epochs, as the official recipe does.

    ``normalizer`` is what the summed terms are divided by: ``"batch"`` (official) the batch's
    positives, at least 1; ``"running"`` an exponential mean of that count (``momentum``, as
    detectron2's RetinaNet does), so that a batch of images without objects (positives 0, the
    objectness loss summed over every anchor) weighs as much as any other. The running mean is
    part of :meth:`state_dict`, so a resumed run continues it exactly.
    """

    use_l1: bool = False
    normalizer: str = "batch"
    momentum: float = 0.9
    running_positives: float | None = field(default=None)
    pss_weight: float = 1.0
    detector_loss: bool = True
    pss_targets: str = "detector"

    def __post_init__(self) -> None:
        if self.normalizer not in NORMALIZERS:
            raise ValueError(f"normalizer must be one of {', '.join(NORMALIZERS)}, got {self.normalizer!r}")
        if self.pss_targets not in PSS_TARGETS:
            raise ValueError(f"pss_targets must be one of {', '.join(PSS_TARGETS)}, got {self.pss_targets!r}")

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
    ) -> dict[str, torch.Tensor]:
        normalizer = self._divisor if self.normalizer == "running" else None
        preds = flatten_predictions(levels, strides)
        if pss is None:
            return yolox_loss_flat(preds, targets, self.use_l1, normalizer)
        if self.detector_loss:
            losses = yolox_loss_flat(preds, targets, self.use_l1, normalizer)
        else:
            zero = preds.raw_reg.new_zeros(())
            losses = dict.fromkeys(("total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss", "num_fg"), zero)
        if self.pss_targets == "detector":
            scores, classes = best_detector_scores(preds.obj_logits, preds.cls_logits)
            survivors = detector_nms_targets(preds.boxes.detach(), scores, classes)
            term = distill_pss_loss(flatten_pss(pss), scores, survivors)
        else:
            gt_boxes, gt_classes, valid = split_targets(targets, preds.num_classes)
            assignment = one_to_one_assign(
                preds.boxes.detach(), preds.obj_logits.detach(), preds.cls_logits.detach(),
                gt_boxes, gt_classes, valid, preds.shapes, preds.level_strides,
            )
            term = pss_loss(flatten_pss(pss), preds.obj_logits, preds.cls_logits, assignment, gt_classes)
        losses["pss_loss"] = term
        losses["total_loss"] = losses["total_loss"] + self.pss_weight * term
        return losses

    def state_dict(self) -> dict[str, Any]:
        return {"use_l1": self.use_l1, "normalizer": self.normalizer, "momentum": self.momentum,
                "running_positives": self.running_positives, "pss_weight": self.pss_weight,
                "detector_loss": self.detector_loss, "pss_targets": self.pss_targets}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("use_l1", "normalizer", "momentum", "running_positives", "pss_weight", "detector_loss", "pss_targets"):
            if key in state:
                setattr(self, key, state[key])
