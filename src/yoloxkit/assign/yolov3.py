"""YOLOv3's label assignment for anchor-based heads, computed for the whole batch at once.

The first rows of the YOLOX roadmap (paper Table 2: the YOLOv3 baseline and its decoupled head)
predict ``A > 1`` boxes per location, one per anchor shape; their anchors come in groups, one per
(level, anchor) (:class:`~yoloxkit.assign.inputs.AnchorGrid`, with ``anchor_sizes``).

* ``rule="best"`` (YOLOv3, Redmon & Farhadi 2018, §2.1, and darknet): each gt takes the one anchor
  shape, among all groups of all levels, with the highest *shape IoU* with it (:func:`shape_iou`:
  the two boxes put on a common centre), at the cell that holds the gt centre on that group's map.
* ``rule="ratio"`` (the ultralytics YOLOv3 line, e.g. the ``pytorchyolo`` package): each gt takes
  every anchor, on every level, whose width and height ratios to the gt are both below ``ratio``
  (``max(r, 1/r) < ratio``), at the centre cell.
* An anchor claimed by several gts of its image goes to the gt of highest shape IoU with it (ties:
  the smaller gt area, then the lower gt index); darknet instead lets the later gt overwrite.
* Ignore: anchors that are not positive but whose *predicted* box has IoU > ``ignore_iou`` (0.5,
  YOLOv3 §2.1) with some gt of their image get ``ignore_mask`` True: the loss leaves their
  objectness out.

Boxes are ``(cx, cy, w, h)`` in input pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .geometry import pairwise_iou_cxcywh
from .inputs import AnchorGrid, AssignInputs, GroundTruth
from .pairs import CandidatePairs, anchor_index, centre_cells, first_per_anchor, group_table, pairs_to_assignment
from .simota import Assignment

__all__ = ["YOLOV3_RULES", "IGNORE_IOU", "shape_iou", "yolov3_pairs", "best_gt_iou", "yolov3_assign"]

#: the anchor-matching rules of :func:`yolov3_assign`
YOLOV3_RULES = ("best", "ratio")

#: YOLOv3's ignore threshold (paper §2.1)
IGNORE_IOU = 0.5


def shape_iou(wh_a: torch.Tensor, wh_b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes ``(w, h)`` sharing a centre: ``min(w) * min(h) / union``.

    ``wh_a`` and ``wh_b`` ``[..., 2]`` broadcast against each other; returns ``[...]``.
    """
    inter = torch.minimum(wh_a[..., 0], wh_b[..., 0]) * torch.minimum(wh_a[..., 1], wh_b[..., 1])
    return inter / (wh_a[..., 0] * wh_a[..., 1] + wh_b[..., 0] * wh_b[..., 1] - inter)


def _claims(gt_wh: torch.Tensor, anchor_wh: torch.Tensor, rule: str, ratio: float) -> torch.Tensor:
    """Bool ``[B, G, K]``: which groups each gt claims under ``rule``."""
    if rule == "best":
        best = shape_iou(gt_wh.unsqueeze(-2), anchor_wh).argmax(dim=-1)  # ties: the lowest group
        return F.one_hot(best, anchor_wh.shape[0]).bool()
    if rule == "ratio":
        r = gt_wh.unsqueeze(-2) / anchor_wh  # [B, G, K, 2]
        return torch.maximum(r, 1.0 / r).amax(dim=-1) < ratio
    raise ValueError(f"rule must be one of {', '.join(YOLOV3_RULES)}, got {rule!r}")


def yolov3_pairs(targets: GroundTruth, anchors: AnchorGrid, rule: str = "best", ratio: float = 4.0) -> CandidatePairs:
    """The (image, gt, group, cell) pairs ``rule`` gives, before conflicts are settled.

    ``targets`` padded gts ``[B, G]`` (padding rows take no part); ``anchors`` the grid with one
    size prior per group (:attr:`AnchorGrid.group_sizes`). Pairs come in (image, gt, group) order.
    Computed in the boxes' dtype (at least float32).
    """
    boxes = targets.boxes.to(torch.promote_types(targets.boxes.dtype, torch.float32))
    device = boxes.device
    if boxes.shape[1] == 0 or not anchors.shapes:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return CandidatePairs(empty, empty, empty, empty, empty, empty)
    table = group_table(anchors, device)
    anchor_wh = torch.tensor(anchors.group_sizes, dtype=boxes.dtype, device=device)  # [K, 2]
    take = _claims(boxes[..., 2:], anchor_wh, rule, ratio) & targets.valid.unsqueeze(-1)
    cell_x, cell_y = centre_cells(boxes, table)  # [B, G, K]
    image, gt, group = take.nonzero(as_tuple=True)
    cx, cy = cell_x[image, gt, group], cell_y[image, gt, group]
    return CandidatePairs(image, gt, group, cx, cy, anchor_index(table, group, cx, cy))


def best_gt_iou(
    boxes: torch.Tensor, gt_boxes: torch.Tensor, gt_valid: torch.Tensor, max_elements: int = 1 << 24
) -> torch.Tensor:
    """The largest IoU of each box with the valid gts of its image: ``[B, A]`` (0 without gts).

    ``boxes`` ``[B, A, 4]``, ``gt_boxes`` ``[B, G, 4]``, ``gt_valid`` ``[B, G]``. The gts are taken
    in chunks so that no more than about ``max_elements`` pairwise IoUs exist at once (a batch of
    16 images at 640 pixels has 25,200 anchors per image and may have a hundred gts).
    """
    batch, num_boxes = boxes.shape[:2]
    best = boxes.new_zeros(batch, num_boxes, dtype=torch.float32)
    step = max(1, max_elements // max(1, batch * num_boxes))
    for start in range(0, gt_boxes.shape[1], step):  # chunks of gts, for the memory only
        iou = pairwise_iou_cxcywh(gt_boxes[:, start:start + step].float(), boxes.float())  # [B, g, A]
        iou = iou.masked_fill(~gt_valid[:, start:start + step].unsqueeze(-1), 0.0)
        best = torch.maximum(best, iou.nan_to_num(0.0).amax(dim=1))
    return best


@torch.no_grad()
def yolov3_assign(
    inputs: AssignInputs, rule: str = "best", ratio: float = 4.0, ignore_iou: float = IGNORE_IOU
) -> Assignment:
    """Assign gts to anchors with YOLOv3's rule for a whole batch (module docstring).

    ``inputs`` holds the decoded predictions ``[B, A, 4]``, the anchor grid (its groups' size
    priors are the anchor shapes) and the padded gts. Returns an :class:`Assignment` whose
    ``matched_iou`` is the IoU of each positive's predicted box with its gt and whose
    ``ignore_mask`` ``[B, A]`` marks the non-positive anchors with a predicted box of IoU >
    ``ignore_iou`` with a gt of their image (none when ``ignore_iou >= 1``).
    """
    targets, anchors = inputs.targets, inputs.anchors
    pairs = yolov3_pairs(targets, anchors, rule, ratio)
    gt_wh = targets.boxes[pairs.image, pairs.gt, 2:].float()
    anchor_wh = torch.tensor(anchors.group_sizes, device=gt_wh.device).reshape(-1, 2)[pairs.group]
    score = shape_iou(gt_wh, anchor_wh)
    keep = first_per_anchor(pairs, anchors.num_anchors, -score, gt_wh.prod(dim=-1))
    pairs = pairs.select(keep)
    boxes = inputs.predictions.boxes
    ignore = best_gt_iou(boxes, targets.boxes, targets.valid) > ignore_iou
    assignment = pairs_to_assignment(pairs, inputs)
    assignment.ignore_mask = ignore & ~assignment.fg_mask
    return assignment
