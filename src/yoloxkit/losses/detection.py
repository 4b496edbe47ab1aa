"""YOLOX training losses: IoU, objectness, class and L1 terms over the assigned positives.

:func:`yolox_loss` is what the model's train-mode forward returns. Every term is summed
over its elements and divided by the number of positives in the batch (on this rank), as
the official head does; the IoU term is weighted by 5. :class:`YoloxLoss` can instead divide by
a running mean of that count (``normalizer="running"``, the fine-tuning recipe): a batch with
few or no positives then no longer scales its objectness loss up by a hundredfold.

The positives come from SimOTA (the default) or one of the roadmap's assigners
(:data:`ASSIGNERS`: YOLOv3's best anchor, whose ignore mask drops objectness terms, and the
anchor-free centre rules). Anchor-based heads give a size prior per group (``anchor_sizes``):
sizes decode as ``exp(raw_wh) * size prior`` and the L1 targets use it.

The PSS loss of end-to-end models is in :mod:`.pss`, the criterion a model carries in
:mod:`.criterion`.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..assign.geometry import aligned_iou_cxcywh
from ..assign.centre import centre_assign
from ..assign.inputs import AnchorGrid, AnchorSizes, AssignInputs, GroundTruth, Predictions
from ..assign.simota import Assignment, simota_assign
from ..assign.yolov3 import IGNORE_IOU, yolov3_assign
from ..errors import DatasetError
from ..models.head import LevelOutput

__all__ = [
    "REG_WEIGHT",
    "ASSIGNERS",
    "run_assigner",
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
]

REG_WEIGHT = 5.0


def _simota(inputs: AssignInputs, ignore_iou: float) -> Assignment:
    return simota_assign(inputs)


def _yolov3(inputs: AssignInputs, ignore_iou: float) -> Assignment:
    return yolov3_assign(inputs, ignore_iou=ignore_iou)


def _centre(inputs: AssignInputs, ignore_iou: float) -> Assignment:
    return centre_assign(inputs, "centre")


def _centre3x3(inputs: AssignInputs, ignore_iou: float) -> Assignment:
    return centre_assign(inputs, "centre3x3")


#: the label assigners by name (``ignore_iou`` is read by "yolov3" only)
_ASSIGNER_TABLE: dict[str, Callable[[AssignInputs, float], Assignment]] = {
    "simota": _simota,
    "yolov3": _yolov3,
    "centre": _centre,
    "centre3x3": _centre3x3,
}

#: the names :class:`~yoloxkit.losses.YoloxLoss` takes as ``assigner``: SimOTA (YOLOX), YOLOv3's best
#: anchor with its ignore threshold, the anchor-free centre location, its 3x3 multi positives
ASSIGNERS = tuple(_ASSIGNER_TABLE)


def run_assigner(name: str, inputs: AssignInputs, ignore_iou: float = IGNORE_IOU) -> Assignment:
    """The assignment of the assigner ``name`` (one of :data:`ASSIGNERS`) on ``inputs``."""
    if name not in _ASSIGNER_TABLE:
        raise ValueError(f"assigner must be one of {', '.join(ASSIGNERS)}, got {name!r}")
    return _ASSIGNER_TABLE[name](inputs, ignore_iou)


class FlatPredictions:
    """Head outputs flattened over levels: ``A`` anchors in model output order.

    ``raw_reg`` ``[B, A, 4]``, ``obj_logits`` ``[B, A]``, ``cls_logits`` ``[B, A, C]`` (float32,
    gradients flow), ``boxes`` ``[B, A, 4]`` decoded (cx, cy, w, h): centre ``(raw_xy + grid) *
    stride``, size ``exp(raw_wh) * size prior``, and the anchor grid ``anchors`` (built once here,
    shared with the assigners through :meth:`assign_inputs`). ``levels``, ``strides`` and
    ``anchor_sizes`` (one ``(w, h)`` each, or None: the stride is the size prior) are per group.
    """

    def __init__(self, levels: list[LevelOutput], strides: tuple[int, ...], anchor_sizes: AnchorSizes = None) -> None:
        reg = [r.flatten(2) for r, _, _ in levels]
        obj = [o.flatten(2) for _, o, _ in levels]
        cls = [c.flatten(2) for _, _, c in levels]
        self.raw_reg = torch.cat(reg, dim=2).transpose(1, 2).float()  # [B, A, 4]
        self.obj_logits = torch.cat(obj, dim=2)[:, 0].float()  # [B, A]
        self.cls_logits = torch.cat(cls, dim=2).transpose(1, 2).float()  # [B, A, C]
        shapes = [tuple(r.shape[-2:]) for r, _, _ in levels]
        self.anchors = AnchorGrid.build(shapes, tuple(strides), self.raw_reg.device, anchor_sizes=anchor_sizes)
        stride = self.strides[:, None]
        self.boxes = torch.cat(
            [(self.raw_reg[..., :2] + self.grid) * stride, torch.exp(self.raw_reg[..., 2:]) * self.sizes], dim=-1
        )  # [B, A, 4] decoded (cx, cy, w, h)

    @property
    def num_classes(self) -> int:
        return self.cls_logits.shape[-1]

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return list(self.anchors.shapes)

    @property
    def level_strides(self) -> tuple[int, ...]:
        return self.anchors.level_strides

    @property
    def grid(self) -> torch.Tensor:
        return self.anchors.grid

    @property
    def strides(self) -> torch.Tensor:
        return self.anchors.strides

    @property
    def centers(self) -> torch.Tensor:
        return self.anchors.centers

    @property
    def sizes(self) -> torch.Tensor:
        return self.anchors.sizes

    def assign_inputs(self, targets: torch.Tensor | GroundTruth) -> AssignInputs:
        """The assigners' bundle: these predictions detached, the anchor grid and the gts
        (padded targets ``[B, max_labels, 5]`` are split with :func:`split_targets`)."""
        gt = targets if isinstance(targets, GroundTruth) else ground_truth(targets, self.num_classes)
        preds = Predictions(self.boxes.detach(), self.obj_logits.detach(), self.cls_logits.detach())
        return AssignInputs(preds, self.anchors, gt)


def flatten_predictions(
    levels: list[LevelOutput], strides: tuple[int, ...], anchor_sizes: AnchorSizes = None
) -> FlatPredictions:
    """Flatten per-group head outputs and decode the boxes (gradients flow through)."""
    return FlatPredictions(levels, strides, anchor_sizes)


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


def ground_truth(targets: torch.Tensor, num_classes: int) -> GroundTruth:
    """:func:`split_targets` as the assigners' :class:`~yoloxkit.assign.inputs.GroundTruth`."""
    return GroundTruth(*split_targets(targets, num_classes))


def assign_targets(preds: FlatPredictions, targets: torch.Tensor) -> tuple[Assignment, torch.Tensor, torch.Tensor]:
    """SimOTA assignment for a batch; returns it with the trimmed gt boxes and classes."""
    inputs = preds.assign_inputs(targets)
    return simota_assign(inputs), inputs.targets.boxes, inputs.targets.classes


def iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-box IoU loss ``1 - IoU**2`` of matching (cx, cy, w, h) rows."""
    return 1 - aligned_iou_cxcywh(pred, target) ** 2


def l1_targets(
    gt: torch.Tensor, grid: torch.Tensor, stride: torch.Tensor, eps: float = 1e-8, size: torch.Tensor | None = None
) -> torch.Tensor:
    """Regression targets in the raw output space: cell offsets and log sizes in size priors.

    ``gt`` ``[N, 4]`` (cx, cy, w, h), ``grid`` ``[N, 2]``, ``stride`` ``[N]``, ``size`` ``[N, 2]``
    the size prior (w, h) of each anchor (default: the stride, as for an anchor-free head).
    """
    stride = stride[:, None]
    prior = stride if size is None else size
    return torch.cat([gt[:, :2] / stride - grid, torch.log(gt[:, 2:] / prior + eps)], dim=1)


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
    return detection_losses(preds, preds.assign_inputs(targets), use_l1, normalizer)


def _objectness_loss(obj_logits: torch.Tensor, fg: torch.Tensor, ignore: torch.Tensor | None) -> torch.Tensor:
    """Summed objectness BCE ``[B, A]`` against the positives; ``ignore`` anchors (never positives:
    :class:`~yoloxkit.assign.simota.Assignment`) weigh 0."""
    weight = None if ignore is None else (~ignore).float()
    return F.binary_cross_entropy_with_logits(obj_logits, fg.float(), weight=weight, reduction="sum")


def detection_losses(
    preds: FlatPredictions,
    inputs: AssignInputs,
    use_l1: bool = False,
    normalizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
    assigner: str = "simota",
    ignore_iou: float = IGNORE_IOU,
) -> dict[str, torch.Tensor]:
    """:func:`yolox_loss` on flattened predictions and their assigners' bundle
    (:meth:`FlatPredictions.assign_inputs`, built once per step), with the positives of
    ``assigner`` (:data:`ASSIGNERS`; ``ignore_iou`` for "yolov3"). The objectness of the anchors
    the assignment's ``ignore_mask`` marks is left out (the divisor is unchanged)."""
    assignment = run_assigner(assigner, inputs, ignore_iou)
    gt_boxes, gt_classes = inputs.targets.boxes, inputs.targets.classes
    fg = assignment.fg_mask
    batch_index, anchor_index = fg.nonzero(as_tuple=True)
    gt_index = assignment.matched_gt[batch_index, anchor_index]
    matched_boxes = gt_boxes[batch_index, gt_index]  # [F, 4]
    matched_classes = gt_classes[batch_index, gt_index]
    positives = assignment.num_fg.float()
    num_fg = normalizer(positives.detach()) if normalizer is not None else positives.clamp(min=1)

    loss_iou = iou_loss(preds.boxes[fg], matched_boxes).sum() / num_fg
    loss_obj = _objectness_loss(preds.obj_logits, fg, assignment.ignore_mask) / num_fg
    cls_target = F.one_hot(matched_classes, preds.num_classes).float() * assignment.matched_iou[fg].unsqueeze(-1)
    loss_cls = F.binary_cross_entropy_with_logits(preds.cls_logits[fg], cls_target, reduction="sum") / num_fg
    if use_l1:
        target = l1_targets(matched_boxes, preds.grid[anchor_index], preds.strides[anchor_index],
                            size=preds.sizes[anchor_index])
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
