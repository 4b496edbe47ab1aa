"""SimOTA label assignment, computed for the whole batch at once.

Semantics follow the official YOLOX (0.3+) head, which the reference package reproduces:

* candidates of an image: anchors whose centre lies within 1.5 strides of the centre of
  any of its gts (:func:`~yoloxkit.assign.geometry.center_prior`);
* pairwise cost between gt ``g`` and candidate anchor ``a`` (computed in float32, no grad):
  ``BCE(sqrt(sigmoid(cls) * sigmoid(obj)), one_hot(class_g))`` summed over classes
  ``+ 3 * -log(IoU + 1e-8) + 1e6 * (a not within the centre prior of g)``;
* dynamic k of a gt: the integer part of the sum of its 10 largest IoUs over the image's
  candidates, at least 1; each gt takes its k lowest-cost candidates;
* an anchor taken by several gts goes to the gt of lowest cost (over all the image's gts).

Padding gts (``gt_valid`` False) and images without gts take no part; nothing loops over
images in Python. The pairwise quantities are computed only on each image's candidates,
packed into a ``[B, G, K]`` layout (K = the largest candidate count in the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .geometry import CandidateSlots, gather_candidates, pairwise_iou_cxcywh
from .inputs import AssignInputs, from_loose_arguments

__all__ = [
    "Assignment",
    "simota_assign",
    "pairwise_class_cost",
    "dynamic_k",
    "lowest_cost_matches",
    "resolve_conflicts",
]

OUTSIDE_PRIOR_COST = 1e6


@dataclass
class Assignment:
    """Result of an assigner (:func:`simota_assign` and the roadmap's) for ``B`` images, ``A`` anchors.

    ``ignore_mask`` (``[B, A]`` bool, or None): anchors that are not positive and whose objectness
    term the loss leaves out (YOLOv3's ignore threshold); SimOTA leaves it None.
    """

    fg_mask: torch.Tensor  # [B, A] bool: the positive anchors
    matched_gt: torch.Tensor  # [B, A] int64: index of the matched gt (0 where not positive)
    matched_iou: torch.Tensor  # [B, A] float32: IoU with the matched gt (0 where not positive)
    num_fg: torch.Tensor  # scalar int64: number of positives in the batch
    num_gt: torch.Tensor  # scalar int64: number of valid gts in the batch
    ignore_mask: torch.Tensor | None = None  # [B, A] bool or None: objectness left out of the loss


def pairwise_class_cost(cls_logits: torch.Tensor, obj_logits: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
    """Class cost ``[B, G, A]``: BCE of the joint score ``sqrt(sigmoid(cls) * sigmoid(obj))``
    against the one-hot class of each gt, summed over classes.

    ``cls_logits`` ``[B, A, C]``, ``obj_logits`` ``[B, A]``, ``gt_classes`` ``[B, G]`` int64.
    The sum over classes is split into the all-negative sum per anchor plus a per-gt
    correction for its own class, so no ``[B, G, A, C]`` tensor is built.
    """
    scores = (cls_logits.float().sigmoid() * obj_logits.float().sigmoid().unsqueeze(-1)).sqrt()
    # BCE against 0 is -log(1 - p), against 1 is -log(p); logs are clamped at -100 like
    # F.binary_cross_entropy. log(1 - p) rather than log1p(-p): vectorised on CPU, ~5x faster.
    negative = torch.log(1 - scores).clamp_(min=-100).neg_()  # [B, A, C]
    total_negative = negative.sum(dim=-1)  # [B, A]
    num_anchors = scores.shape[1]
    index = gt_classes.unsqueeze(-1).expand(-1, -1, num_anchors)  # [B, G, A]
    gt_scores = scores.transpose(1, 2).gather(1, index)
    gt_negative = negative.transpose(1, 2).gather(1, index)
    gt_positive = torch.log(gt_scores).clamp_(min=-100).neg_()
    return total_negative.unsqueeze(1) - gt_negative + gt_positive


def dynamic_k(ious: torch.Tensor, top: int = 10) -> torch.Tensor:
    """Number of positives per gt: ``max(1, int(sum of its top-``top`` IoUs))``.

    ``ious`` ``[..., G, A]`` with non-candidate anchors set to 0. Returns int64 ``[..., G]``.
    """
    top = min(top, ious.shape[-1])
    return ious.topk(top, dim=-1).values.sum(dim=-1).int().clamp(min=1).long()


def lowest_cost_matches(cost: torch.Tensor, ks: torch.Tensor, max_k: int = 10) -> torch.Tensor:
    """Bool matrix ``[..., G, A]`` marking, for each gt, its ``ks`` lowest-cost anchors.

    ``ks`` ``[..., G]`` must not exceed ``max_k``; one top-k over ``max_k`` serves every gt.
    """
    max_k = min(max_k, cost.shape[-1])
    order = cost.topk(max_k, dim=-1, largest=False).indices  # [..., G, max_k]
    take = torch.arange(max_k, device=cost.device) < ks.unsqueeze(-1)
    matching = torch.zeros(cost.shape, dtype=torch.bool, device=cost.device)
    return matching.scatter_(-1, order, take)


def resolve_conflicts(matching: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    """Give each anchor taken by several gts to the gt with the lowest cost for it.

    ``matching`` bool ``[..., G, A]``, ``cost`` ``[..., G, A]``; the argmin runs over all
    gts of the image (ties go to the lowest gt index). Returns the new matching.
    """
    shared = matching.sum(dim=-2, keepdim=True) > 1  # [..., 1, A]
    best = F.one_hot(cost.argmin(dim=-2), cost.shape[-2]).transpose(-1, -2).bool()  # [..., G, A]
    return torch.where(shared, best, matching)


@torch.no_grad()
def simota_assign(
    inputs: AssignInputs,
    *loose: object,
    center_radius: float = 1.5,
    iou_weight: float = 3.0,
    topk_ious: int = 10,
) -> Assignment:
    """Assign gts to anchors with SimOTA for a whole batch.

    ``inputs`` holds the decoded predictions ``[B, A, 4]`` (cx, cy, w, h) in input pixels with
    their objectness ``[B, A]`` and class logits ``[B, A, C]``, the anchor grid and the padded gts
    (:class:`~yoloxkit.assign.inputs.AssignInputs`). The eight loose tensors of earlier versions
    (``pred_boxes, obj_logits, cls_logits, gt_boxes, gt_classes, gt_valid, shapes, strides``) are
    still accepted, with a :class:`DeprecationWarning`.
    """
    inputs = from_loose_arguments("simota_assign", inputs, loose)
    preds, targets = inputs.predictions, inputs.targets
    batch, num_anchors = preds.boxes.shape[:2]
    device = preds.boxes.device
    empty = torch.zeros(batch, num_anchors, dtype=torch.bool, device=device)
    zero = torch.zeros((), dtype=torch.long, device=device)
    if targets.boxes.shape[1] == 0:
        return Assignment(empty, empty.long(), empty.float(), zero, zero)
    # Work on each image's candidates only, packed in anchor order and padded to the
    # largest count in the batch: K is a few hundred where A is several thousand.
    slots = gather_candidates(inputs, center_radius)
    if slots.index.shape[1] == 0:
        return Assignment(empty, empty.long(), empty.float(), zero, targets.valid.sum())
    fg, gt_of_slot, iou_of_slot = _match_slots(slots, targets.boxes.float(), targets.classes.long().clamp(min=0),
                                               targets.valid, iou_weight, topk_ious)
    # Padding slots point at non-candidate anchors, so scattering them back writes zeros there.
    index = slots.index
    fg_mask = empty.scatter(1, index, fg)
    matched_gt = torch.zeros(batch, num_anchors, dtype=torch.long, device=device).scatter(1, index, gt_of_slot * fg)
    matched_iou = torch.zeros(batch, num_anchors, device=device).scatter(1, index, iou_of_slot)
    return Assignment(fg_mask, matched_gt, matched_iou, fg_mask.sum(), targets.valid.sum())


def _match_slots(
    slots: CandidateSlots,
    gt_boxes: torch.Tensor,
    gt_classes: torch.Tensor,
    gt_valid: torch.Tensor,
    iou_weight: float,
    topk_ious: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimOTA on the packed candidates: per slot ``[B, K]`` whether it is positive, its gt and
    the IoU with it (0 where not positive)."""
    pair_mask = slots.slot_valid.unsqueeze(1) & gt_valid.unsqueeze(-1)  # [B, G, K]
    ious = pairwise_iou_cxcywh(gt_boxes, slots.boxes).masked_fill(~pair_mask, 0.0)
    cost = pairwise_class_cost(slots.cls_logits, slots.obj_logits, gt_classes)
    cost = cost + iou_weight * -torch.log(ious + 1e-8)
    cost = cost + OUTSIDE_PRIOR_COST * (~slots.in_prior)
    cost = cost.masked_fill(~pair_mask, float("inf"))

    ks = dynamic_k(ious, topk_ious)
    matching = lowest_cost_matches(cost, ks, max_k=topk_ious) & pair_mask
    matching = resolve_conflicts(matching, cost) & pair_mask

    fg = matching.any(dim=1)  # [B, K]
    gt_of_slot = matching.to(torch.uint8).argmax(dim=1)  # [B, K]
    iou_of_slot = ious.gather(1, gt_of_slot.unsqueeze(1)).squeeze(1) * fg
    return fg, gt_of_slot, iou_of_slot
