"""The anchor-free centre assignments of the YOLOX roadmap, computed for the whole batch at once.

The paper's "anchor-free" row (§2.2) makes the centre location of each object positive and
"pre-define[s] a scale range, as done in FCOS, to designate the FPN level for each object"; its
"multi positives" row assigns "the center 3x3 area as positives". The paper gives no ranges, so
:data:`FCOS_SCALE_RANGES` follows FCOS (Tian et al. 2019, §3.2) for P3..P5: a gt of half-size
``s = max(w, h) / 2`` goes to the level whose range ``(lo, hi]`` holds ``s``: (0, 64], (64, 128],
(128, inf) in input pixels (FCOS bounds the regression distance ``max(l, t, r, b)``, which is ``s``
at the centre; the last level is left open because YOLOX has no P6/P7).

* ``rule="centre"``: the one location whose cell holds the gt centre on that level (clamped into
  the map) is positive;
* ``rule="centre3x3"``: the 3x3 cells around that centre cell on the same level, clipped to the
  map (FCOS's centre sampling on a cell grid);
* an anchor claimed by several gts of its image goes to the gt of smallest area (FCOS's rule;
  ties: the lower gt index).

Levels are the distinct strides in ascending order; a grid with several groups per level (anchor
shapes) makes every group of the gt's level take the same cells. No ignore mask. Boxes are
``(cx, cy, w, h)`` in input pixels.
"""

from __future__ import annotations

import math

import torch

from .inputs import AnchorGrid, AssignInputs, GroundTruth
from .pairs import CandidatePairs, anchor_index, centre_cells, first_per_anchor, group_table, pairs_to_assignment
from .simota import Assignment

__all__ = ["FCOS_SCALE_RANGES", "CENTRE_RULES", "group_levels", "scale_levels", "centre_pairs", "centre_assign"]

#: FCOS's object-size ranges of P3, P4, P5: ``max(w, h) / 2`` in input pixels, ``(lo, hi]``
FCOS_SCALE_RANGES = ((0.0, 64.0), (64.0, 128.0), (128.0, math.inf))

#: the rules of :func:`centre_assign`: the centre cell, or the 3x3 cells around it
CENTRE_RULES = ("centre", "centre3x3")


def group_levels(level_strides: tuple[int, ...]) -> list[int]:
    """The level of each group: the rank of its stride among the distinct strides (ascending)."""
    distinct = sorted(set(level_strides))
    return [distinct.index(stride) for stride in level_strides]


def scale_levels(gt_boxes: torch.Tensor, scale_ranges: tuple[tuple[float, float], ...] = FCOS_SCALE_RANGES) -> torch.Tensor:
    """The level of each gt ``[..., G, 4]``: int64 ``[..., G]``, the index of the range ``(lo, hi]``
    of ``scale_ranges`` holding ``max(w, h) / 2`` (consecutive ranges; a size of 0 takes the first,
    one past the last range's upper bound the last)."""
    half = gt_boxes[..., 2:4].to(torch.promote_types(gt_boxes.dtype, torch.float32)).amax(dim=-1) / 2
    bounds = torch.tensor([hi for _, hi in scale_ranges[:-1]], dtype=half.dtype, device=half.device)
    return torch.bucketize(half.contiguous(), bounds, right=False)


def _block(rule: str, device: torch.device) -> torch.Tensor:
    """The cell offsets ``[O, 2]`` (dx, dy) a gt takes around its centre cell."""
    if rule == "centre":
        return torch.zeros(1, 2, dtype=torch.long, device=device)
    if rule == "centre3x3":
        steps = torch.arange(-1, 2, device=device)
        dy, dx = torch.meshgrid(steps, steps, indexing="ij")
        return torch.stack((dx.flatten(), dy.flatten()), dim=1)
    raise ValueError(f"rule must be one of {', '.join(CENTRE_RULES)}, got {rule!r}")


def centre_pairs(
    targets: GroundTruth,
    anchors: AnchorGrid,
    rule: str = "centre",
    scale_ranges: tuple[tuple[float, float], ...] = FCOS_SCALE_RANGES,
) -> CandidatePairs:
    """The (image, gt, group, cell) pairs ``rule`` gives, before conflicts are settled, in
    (image, gt, group, offset) order; padding gts take no part. Raises ``ValueError`` when the grid
    has another number of levels than ``scale_ranges`` has ranges."""
    boxes = targets.boxes.to(torch.promote_types(targets.boxes.dtype, torch.float32))
    device = boxes.device
    levels = group_levels(anchors.level_strides)
    if anchors.shapes and max(levels) + 1 != len(scale_ranges):
        raise ValueError(f"centre assignment: {len(scale_ranges)} scale ranges for {max(levels) + 1} levels")
    offsets = _block(rule, device)
    if boxes.shape[1] == 0 or not anchors.shapes:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return CandidatePairs(empty, empty, empty, empty, empty, empty)
    table = group_table(anchors, device)
    on_level = scale_levels(boxes, scale_ranges).unsqueeze(-1) == torch.tensor(levels, device=device)  # [B, G, K]
    cell_x, cell_y = centre_cells(boxes, table)  # [B, G, K]
    cell_x = cell_x.unsqueeze(-1) + offsets[:, 0]  # [B, G, K, O]
    cell_y = cell_y.unsqueeze(-1) + offsets[:, 1]
    inside = (cell_x >= 0) & (cell_x < table["width"][:, None]) & (cell_y >= 0) & (cell_y < table["height"][:, None])
    take = inside & (on_level & targets.valid.unsqueeze(-1)).unsqueeze(-1)
    image, gt, group, offset = take.nonzero(as_tuple=True)
    cx, cy = cell_x[image, gt, group, offset], cell_y[image, gt, group, offset]
    return CandidatePairs(image, gt, group, cx, cy, anchor_index(table, group, cx, cy))


@torch.no_grad()
def centre_assign(
    inputs: AssignInputs, rule: str = "centre", scale_ranges: tuple[tuple[float, float], ...] = FCOS_SCALE_RANGES
) -> Assignment:
    """Assign gts to anchors with the centre rule ``rule`` for a whole batch (module docstring).

    ``inputs`` holds the decoded predictions ``[B, A, 4]``, the anchor grid and the padded gts.
    Returns an :class:`Assignment` whose ``matched_iou`` is the IoU of each positive's predicted
    box with its gt; ``ignore_mask`` is None.
    """
    targets = inputs.targets
    pairs = centre_pairs(targets, inputs.anchors, rule, scale_ranges)
    area = targets.boxes[pairs.image, pairs.gt, 2:].float().prod(dim=-1)
    pairs = pairs.select(first_per_anchor(pairs, inputs.anchors.num_anchors, area))
    return pairs_to_assignment(pairs, inputs)
