"""Geometry of the SimOTA prior: anchor centres, the centre-radius prior and batched IoU.

All functions are pure and batched over leading dimensions; boxes are ``(cx, cy, w, h)``.
The arithmetic follows the official YOLOX order of operations so that boundary cases
(an anchor exactly on the edge of the prior, touching boxes) are decided identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .inputs import AnchorGrid, AssignInputs, GroundTruth, anchor_centers

__all__ = ["anchor_centers", "center_prior", "candidate_anchors", "pack_candidates", "CandidateSlots", "gather_candidates", "pairwise_iou_cxcywh", "aligned_iou_cxcywh", "cxcywh_to_xyxy"]


def center_prior(
    gt_boxes: torch.Tensor, centers: torch.Tensor, strides: torch.Tensor, radius: float = 1.5
) -> torch.Tensor:
    """Whether each anchor centre lies strictly within ``radius`` strides of each gt centre.

    ``gt_boxes`` ``[..., G, 4]`` (cx, cy, w, h); ``centers`` ``[A, 2]`` and ``strides`` ``[A]``
    (shared by the batch) or ``[..., A, 2]`` and ``[..., A]`` (one set per image).
    Returns a bool tensor ``[..., G, A]``. The region is the open square of half-side
    ``radius * stride`` (the anchor's own stride) around the gt centre; the gt's size
    does not matter.
    """
    reach = (strides * radius).unsqueeze(-2)  # [..., 1, A]
    ax, ay = centers[..., 0].unsqueeze(-2), centers[..., 1].unsqueeze(-2)
    gx = gt_boxes[..., 0:1]  # [..., G, 1]
    gy = gt_boxes[..., 1:2]
    inside = (ax - (gx - reach)) > 0
    inside &= ((gx + reach) - ax) > 0
    inside &= (ay - (gy - reach)) > 0
    inside &= ((gy + reach) - ay) > 0
    return inside


def candidate_anchors(targets: GroundTruth, anchors: AnchorGrid, radius: float = 1.5) -> torch.Tensor:
    """Anchors inside the centre prior of at least one valid gt: bool ``[B, A]``.

    Equal to ``center_prior(...)`` reduced with ``any`` over the valid gts, but computed
    per level and per axis (the prior is a product of an x and a y interval), so the work
    is ``B*G*(H+W)`` comparisons instead of ``B*G*H*W``.
    """
    gt_boxes = targets.boxes.float()
    gx = gt_boxes[..., 0:1]  # [B, G, 1]
    gy = gt_boxes[..., 1:2]
    valid = targets.valid.unsqueeze(-1)
    masks = []
    for (height, width), stride in zip(anchors.shapes, anchors.level_strides):
        reach = float(stride) * radius
        xs = (torch.arange(width, device=gt_boxes.device, dtype=gt_boxes.dtype) + 0.5) * stride
        ys = (torch.arange(height, device=gt_boxes.device, dtype=gt_boxes.dtype) + 0.5) * stride
        in_x = ((xs - (gx - reach)) > 0) & (((gx + reach) - xs) > 0) & valid  # [B, G, W]
        in_y = ((ys - (gy - reach)) > 0) & (((gy + reach) - ys) > 0)  # [B, G, H]
        grid = in_y.unsqueeze(-1) & in_x.unsqueeze(-2)  # [B, G, H, W]
        masks.append(grid.any(dim=1).flatten(1))
    return torch.cat(masks, dim=1)


def pack_candidates(candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's candidate anchors packed in anchor order: ``(index [B, K], slot_valid [B, K])``,
    ``K`` the largest count in the batch; padding slots point at non-candidates and are not valid."""
    counts = candidates.sum(dim=1)
    width = int(counts.max()) if counts.numel() else 0
    index = torch.sort((~candidates).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    slot_valid = torch.arange(width, device=candidates.device) < counts.unsqueeze(1)
    return index, slot_valid


@dataclass(frozen=True)
class CandidateSlots:
    """Each image's candidate anchors, packed to ``K`` slots, with the predictions there."""

    index: torch.Tensor  # [B, K] anchor index of each slot
    slot_valid: torch.Tensor  # [B, K] False for padding slots
    in_prior: torch.Tensor  # [B, G, K] centre prior of each valid gt
    boxes: torch.Tensor  # [B, K, 4] float32 (cx, cy, w, h)
    obj_logits: torch.Tensor  # [B, K]
    cls_logits: torch.Tensor  # [B, K, C]


def gather_candidates(inputs: AssignInputs, radius: float = 1.5) -> CandidateSlots:
    """The anchors an assigner scores: those in some valid gt's prior, packed per image.

    Reads the bundle's predictions ``[B, A, ...]`` as the head outputs them (the logits keep their
    dtype), its anchor grid and its gts (boxes taken as float32).
    """
    preds, anchors, targets = inputs.predictions, inputs.anchors, inputs.targets
    index, slot_valid = pack_candidates(candidate_anchors(targets, anchors, radius))
    centers, anchor_strides = anchors.centers.to(preds.boxes.device), anchors.strides.to(preds.boxes.device)
    in_prior = center_prior(targets.boxes.float(), centers[index], anchor_strides[index], radius)
    cls_logits = preds.cls_logits
    return CandidateSlots(
        index=index,
        slot_valid=slot_valid,
        in_prior=in_prior & targets.valid.unsqueeze(-1),
        boxes=preds.boxes.float().gather(1, index.unsqueeze(-1).expand(-1, -1, 4)),
        obj_logits=preds.obj_logits.gather(1, index),
        cls_logits=cls_logits.gather(1, index.unsqueeze(-1).expand(-1, -1, cls_logits.shape[-1])),
    )


def _corners(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = boxes[..., 2:] / 2
    return boxes[..., :2] - half, boxes[..., :2] + half


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)`` on the last dimension."""
    return torch.cat(_corners(boxes), dim=-1)


def pairwise_iou_cxcywh(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``boxes_a`` ``[..., N, 4]`` with every box of ``boxes_b`` ``[..., M, 4]``.

    Boxes are (cx, cy, w, h); leading dimensions broadcast. Returns ``[..., N, M]``.
    Boxes that do not overlap (or only touch) have IoU 0; no epsilon is added to the union.
    """
    a_lo, a_hi = _corners(boxes_a.unsqueeze(-2))  # [..., N, 1, 2]
    b_lo, b_hi = _corners(boxes_b.unsqueeze(-3))  # [..., 1, M, 2]
    lo = torch.maximum(a_lo, b_lo)
    hi = torch.minimum(a_hi, b_hi)
    overlaps = (lo < hi).all(dim=-1)
    area_inter = (hi - lo).prod(dim=-1) * overlaps
    area_a = boxes_a[..., 2:].prod(dim=-1).unsqueeze(-1)
    area_b = boxes_b[..., 2:].prod(dim=-1).unsqueeze(-2)
    return area_inter / (area_a + area_b - area_inter)


def aligned_iou_cxcywh(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-16) -> torch.Tensor:
    """IoU of matching rows of ``pred`` and ``target`` ``[N, 4]`` (cx, cy, w, h), differentiable.

    ``eps`` is added to the union, as in the official IoU loss.
    """
    p_lo, p_hi = _corners(pred)
    t_lo, t_hi = _corners(target)
    lo = torch.maximum(p_lo, t_lo)
    hi = torch.minimum(p_hi, t_hi)
    overlaps = (lo < hi).all(dim=-1)
    area_inter = (hi - lo).prod(dim=-1) * overlaps
    area_union = pred[..., 2:].prod(dim=-1) + target[..., 2:].prod(dim=-1) - area_inter
    return area_inter / (area_union + eps)
