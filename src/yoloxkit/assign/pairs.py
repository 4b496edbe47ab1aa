"""Candidate (image, gt, anchor) pairs of the rule-based assigners and their resolution.

The roadmap's assigners (YOLOv3's best anchor, :mod:`.yolov3`; the anchor-free centre rules,
:mod:`.centre`) first list, for every valid gt, the anchors its rule gives it; an anchor listed
for several gts of its image then goes to one of them by the rule's order of preference, and the
kept pairs become an :class:`~yoloxkit.assign.simota.Assignment`. Everything here is batched over
images and gts: pairs are flat tensors, conflicts are settled by sorting, not by loops.
Boxes are ``(cx, cy, w, h)`` in input pixels; anchors are ordered group by group, row-major
(:class:`~yoloxkit.assign.inputs.AnchorGrid`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .geometry import aligned_iou_cxcywh
from .inputs import AnchorGrid, AssignInputs
from .simota import Assignment

__all__ = ["CandidatePairs", "group_table", "centre_cells", "anchor_index", "first_per_anchor", "pairs_to_assignment"]


@dataclass(frozen=True)
class CandidatePairs:
    """``P`` candidate pairs, one entry per pair: the ``image``, its ``gt`` (index into the padded
    gts), the anchor ``group``, the cell ``cell_x``/``cell_y`` on that group's map and the flat
    ``anchor`` index (all int64 ``[P]``)."""

    image: torch.Tensor
    gt: torch.Tensor
    group: torch.Tensor
    cell_x: torch.Tensor
    cell_y: torch.Tensor
    anchor: torch.Tensor

    def __len__(self) -> int:
        return int(self.image.numel())

    def select(self, keep: torch.Tensor) -> "CandidatePairs":
        """The pairs where ``keep`` ``[P]`` (bool) is True."""
        return CandidatePairs(*(getattr(self, name)[keep] for name in self.__dataclass_fields__))


def group_table(anchors: AnchorGrid, device: torch.device) -> dict[str, torch.Tensor]:
    """Per group ``[K]``: ``stride`` (float), ``height``, ``width`` and ``start`` (first anchor
    index, int64) of the grid's groups, as tensors on ``device``."""
    heights, widths = zip(*anchors.shapes) if anchors.shapes else ((), ())
    return {
        "stride": torch.tensor([float(s) for s in anchors.level_strides], device=device),
        "height": torch.tensor(heights, dtype=torch.long, device=device),
        "width": torch.tensor(widths, dtype=torch.long, device=device),
        "start": torch.tensor(anchors.group_starts, dtype=torch.long, device=device),
    }


def centre_cells(gt_boxes: torch.Tensor, table: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The cell holding each gt centre on each group's map: ``(cell_x, cell_y)`` int64
    ``[..., G, K]`` for ``gt_boxes`` ``[..., G, 4]``; ``floor(centre / stride)`` clamped into the map
    (a centre on the image's far edge, or outside it, takes the nearest cell). Computed in the
    boxes' dtype (at least float32)."""
    stride = table["stride"]
    cell_x = torch.floor(gt_boxes[..., 0:1] / stride).long()
    cell_y = torch.floor(gt_boxes[..., 1:2] / stride).long()
    cell_x = torch.minimum(cell_x.clamp(min=0), table["width"] - 1)
    cell_y = torch.minimum(cell_y.clamp(min=0), table["height"] - 1)
    return cell_x, cell_y


def anchor_index(table: dict[str, torch.Tensor], group: torch.Tensor, cell_x: torch.Tensor, cell_y: torch.Tensor) -> torch.Tensor:
    """Flat anchor index of cell ``(cell_x, cell_y)`` on ``group`` (broadcasting int64 tensors)."""
    return table["start"][group] + cell_y * table["width"][group] + cell_x


def first_per_anchor(pairs: CandidatePairs, num_anchors: int, *keys: torch.Tensor) -> torch.Tensor:
    """Which pairs keep their anchor: bool ``[P]``, one True per distinct (image, anchor).

    Among the pairs of one (image, anchor) the first in the lexicographic order of ``keys``
    (each ``[P]``, ascending; the gt index breaks the remaining ties) wins. A stable sort per key,
    least significant first.
    """
    slot = pairs.image * num_anchors + pairs.anchor
    order = torch.arange(len(pairs), device=slot.device)
    for key in (pairs.gt, *reversed(keys), slot):
        order = order[torch.sort(key[order], stable=True).indices]
    ordered = slot[order]
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[1:] = ordered[1:] != ordered[:-1]
    keep = torch.zeros_like(first)
    keep[order[first]] = True
    return keep


def pairs_to_assignment(pairs: CandidatePairs, inputs: AssignInputs, ignore_mask: torch.Tensor | None = None) -> Assignment:
    """The :class:`Assignment` of resolved ``pairs`` (at most one per (image, anchor)).

    ``matched_iou`` is the IoU of each positive's predicted box with its gt (float32, as SimOTA
    gives it for the IoU-aware class target); ``ignore_mask`` is passed through.
    """
    preds, targets = inputs.predictions, inputs.targets
    batch, num_anchors = preds.boxes.shape[:2]
    device = preds.boxes.device
    fg_mask = torch.zeros(batch, num_anchors, dtype=torch.bool, device=device)
    matched_gt = torch.zeros(batch, num_anchors, dtype=torch.long, device=device)
    matched_iou = torch.zeros(batch, num_anchors, device=device)
    if len(pairs):
        where = (pairs.image, pairs.anchor)
        fg_mask[where] = True
        matched_gt[where] = pairs.gt
        pred = preds.boxes[where].float()
        matched_iou[where] = aligned_iou_cxcywh(pred, targets.boxes[pairs.image, pairs.gt].float())
    return Assignment(fg_mask, matched_gt, matched_iou, fg_mask.sum(), targets.valid.sum(), ignore_mask)
