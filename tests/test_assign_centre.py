"""The anchor-free centre assignments (``yoloxkit.assign.centre``): FCOS scale ranges, the centre
cell and its 3x3 area, the smallest-area rule; hand-worked cases and a brute-force loop."""

from __future__ import annotations

import pytest
import torch

from yoloxkit.assign.geometry import aligned_iou_cxcywh
from yoloxkit.assign.inputs import AnchorGrid, AssignInputs, GroundTruth
from yoloxkit.assign.centre import FCOS_SCALE_RANGES, centre_assign, centre_pairs, group_levels, scale_levels
from tests.assign_cases import truth

STRIDES = (8, 16, 32)


def grid_for(size: int, strides: tuple[int, ...] = STRIDES, anchor_sizes=None) -> AnchorGrid:
    return AnchorGrid.build([(size // s, size // s) for s in strides], strides, anchor_sizes=anchor_sizes)


def inputs_for(gt: GroundTruth, grid: AnchorGrid, boxes: torch.Tensor | None = None) -> AssignInputs:
    batch, anchors = gt.boxes.shape[0], grid.num_anchors
    if boxes is None:
        gen = torch.Generator().manual_seed(0)
        boxes = torch.cat([grid.centers.expand(batch, -1, -1), torch.rand(batch, anchors, 2, generator=gen) * 60 + 4], -1)
    return AssignInputs.from_tensors(boxes, torch.zeros(batch, anchors), torch.zeros(batch, anchors, 2), gt.boxes,
                                     gt.classes, gt.valid, list(grid.shapes), grid.level_strides, grid.anchor_sizes)


def test_scale_levels_at_the_range_borders():
    assert FCOS_SCALE_RANGES == ((0.0, 64.0), (64.0, 128.0), (128.0, float("inf")))
    sizes = [(128.0, 10.0), (10.0, 128.01), (256.0, 3.0), (30.0, 256.02), (0.0, 0.0), (200.0, 10.0), (900.0, 900.0)]
    boxes = torch.tensor([[50.0, 50.0, w, h] for w, h in sizes])
    assert scale_levels(boxes).tolist() == [0, 1, 1, 2, 0, 1, 2]


def test_group_levels():
    assert group_levels((8, 16, 32)) == [0, 1, 2]
    assert group_levels((8, 8, 8, 16, 16, 16, 32, 32, 32)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_centre_cell_on_the_gt_level():
    grid = grid_for(128)  # maps 16, 8, 4; level 1 starts at 256, level 2 at 320
    gt = truth([[[20.0, 21.0, 30.0, 40.0], [100.0, 50.0, 300.0, 100.0], [127.9, 60.0, 140.0, 20.0]]])
    pairs = centre_pairs(gt, grid)
    assert pairs.gt.tolist() == [0, 1, 2] and pairs.group.tolist() == [0, 2, 1]
    assert pairs.anchor.tolist() == [2 * 16 + 2, 320 + 1 * 4 + 3, 256 + 3 * 8 + 7]
    out = centre_assign(inputs_for(gt, grid))
    assert out.fg_mask.nonzero()[:, 1].tolist() == [34, 287, 327] and out.ignore_mask is None
    assert out.matched_gt[0, [34, 287, 327]].tolist() == [0, 2, 1]


def test_3x3_block_is_clipped_at_the_map_border():
    grid = grid_for(128)
    gt = truth([[[3.0, 3.0, 10.0, 10.0], [127.0, 70.0, 10.0, 10.0], [60.0, 60.0, 10.0, 10.0]]])
    pairs = centre_pairs(gt, grid, "centre3x3")
    cells = {g: sorted(zip(pairs.cell_x[pairs.gt == g].tolist(), pairs.cell_y[pairs.gt == g].tolist())) for g in range(3)}
    assert cells[0] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert cells[1] == [(14, 7), (14, 8), (14, 9), (15, 7), (15, 8), (15, 9)]
    assert cells[2] == [(x, y) for x in (6, 7, 8) for y in (6, 7, 8)]
    assert centre_assign(inputs_for(gt, grid), "centre3x3").num_fg.item() == 4 + 6 + 9


def test_contested_cells_go_to_the_smallest_gt():
    grid = grid_for(128)
    # centre cells (2, 2) and (3, 2) on level 0: their 3x3 areas share columns 2 and 3
    gt = truth([[[20.0, 20.0, 40.0, 30.0], [28.0, 20.0, 30.0, 30.0], [20.0, 20.0, 40.0, 30.0]]])
    out = centre_assign(inputs_for(gt, grid), "centre3x3")
    owner = {(a % 16, a // 16): out.matched_gt[0, a].item() for a in out.fg_mask[0].nonzero()[:, 0].tolist()}
    assert owner == {**{(1, y): 0 for y in (1, 2, 3)}, **{(x, y): 1 for x in (2, 3, 4) for y in (1, 2, 3)}}
    # equal areas: the lower gt index keeps the cell
    alone = centre_assign(inputs_for(truth([[[20.0, 20.0, 40.0, 30.0], [21.0, 21.0, 30.0, 40.0]]]), grid))
    assert alone.num_fg.item() == 1 and alone.matched_gt[0, 2 * 16 + 2].item() == 0


def brute_force(gt: GroundTruth, grid: AnchorGrid, block: int) -> dict[tuple[int, int], int]:
    """Plain loops over images, gts and block cells; {(image, anchor): gt}."""
    won: dict[tuple[int, int], tuple[tuple[float, int], int]] = {}
    starts = grid.group_starts
    for b in range(gt.boxes.shape[0]):
        for g in range(gt.boxes.shape[1]):
            if not gt.valid[b, g]:
                continue
            cx, cy, w, h = gt.boxes[b, g].tolist()
            half = max(w, h) / 2
            level = 0 if half <= 64 else 1 if half <= 128 else 2
            stride, (height, width) = STRIDES[level], grid.shapes[level]
            i = min(max(int(cx // stride), 0), width - 1)
            j = min(max(int(cy // stride), 0), height - 1)
            for dy in range(-(block // 2), block // 2 + 1):
                for dx in range(-(block // 2), block // 2 + 1):
                    if 0 <= i + dx < width and 0 <= j + dy < height:
                        slot = (b, starts[level] + (j + dy) * width + i + dx)
                        key = (w * h, g)
                        if slot not in won or key < won[slot][0]:
                            won[slot] = (key, g)
    return {slot: g for slot, (_, g) in won.items()}


@pytest.mark.parametrize(("rule", "block"), [("centre", 1), ("centre3x3", 3)])
def test_equals_brute_force_on_random_gts(rule: str, block: int):
    grid = grid_for(256)
    gen = torch.Generator().manual_seed(11)
    rows = []
    for n in (15, 0, 40):
        centre = torch.rand(n, 2, generator=gen) * 270 - 7
        size = torch.exp(torch.rand(n, 2, generator=gen) * 6) + 1  # 2 to ~400 px
        rows.append(torch.cat([centre, size], 1).round(decimals=1).tolist())
    rows[2] += [rows[2][3], rows[2][3]]
    gt = truth(rows)
    boxes = inputs_for(gt, grid).predictions.boxes
    out = centre_assign(inputs_for(gt, grid, boxes), rule)
    expected = brute_force(gt, grid, block)
    actual = {(b, a): out.matched_gt[b, a].item() for b, a in out.fg_mask.nonzero().tolist()}
    assert actual == expected and out.num_fg.item() == len(expected)
    assert len(centre_pairs(gt, grid, rule)) > len(expected)  # some cells were contested
    b, a = out.fg_mask.nonzero(as_tuple=True)
    iou = aligned_iou_cxcywh(boxes[b, a], gt.boxes[b, out.matched_gt[b, a]])
    assert torch.allclose(out.matched_iou[b, a], iou) and not out.matched_iou[~out.fg_mask].any()


def test_anchor_groups_of_a_level_share_the_cells_and_bad_grids_are_refused():
    anchor_sizes = tuple((float(s), float(s)) for s in (8, 12, 16, 16, 24, 32, 32, 48, 64))
    grid = grid_for(64, tuple(s for s in STRIDES for _ in range(3)), anchor_sizes)
    pairs = centre_pairs(truth([[[20.0, 20.0, 10.0, 10.0]]]), grid)
    assert pairs.group.tolist() == [0, 1, 2] and pairs.cell_x.tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="scale ranges"):
        centre_pairs(truth([[[20.0, 20.0, 10.0, 10.0]]]), grid_for(64, (8, 16)))
    with pytest.raises(ValueError, match="rule"):
        centre_pairs(truth([[[20.0, 20.0, 10.0, 10.0]]]), grid_for(64), "centre5x5")
    empty = centre_assign(inputs_for(truth([[], []]), grid_for(64)))
    assert empty.num_fg.item() == 0 and empty.num_gt.item() == 0
