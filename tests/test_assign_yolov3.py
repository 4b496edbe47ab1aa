"""YOLOv3's anchor assignment (``yoloxkit.assign.yolov3``): hand-worked cases, a brute-force loop
for the ``best`` rule and, for the ``ratio`` rule, the target building of a published YOLOv3
implementation (``pytorchyolo``, the ultralytics line) on the same inputs."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch

from yoloxkit.assign.geometry import aligned_iou_cxcywh
from yoloxkit.assign.inputs import AnchorGrid, AssignInputs, GroundTruth
from yoloxkit.assign.yolov3 import best_gt_iou, shape_iou, yolov3_assign, yolov3_pairs
from yoloxkit.models.anchors import YOLOV3_ANCHORS
from tests.assign_cases import truth

LEVEL_STRIDES = (8, 16, 32)
GROUP_STRIDES = tuple(s for s in LEVEL_STRIDES for _ in range(3))
ANCHOR_SIZES = tuple(wh for level in YOLOV3_ANCHORS for wh in level)


def grid_for(size: int) -> AnchorGrid:
    shapes = [(size // s, size // s) for s in GROUP_STRIDES]
    return AnchorGrid.build(shapes, GROUP_STRIDES, anchor_sizes=ANCHOR_SIZES)


def inputs_for(gt: GroundTruth, grid: AnchorGrid, boxes: torch.Tensor | None = None) -> AssignInputs:
    batch, anchors = gt.boxes.shape[0], grid.num_anchors
    if boxes is None:  # predictions far from every gt: nothing ignored
        boxes = torch.tensor([-500.0, -500.0, 1.0, 1.0]).expand(batch, anchors, 4).clone()
    return AssignInputs.from_tensors(boxes, torch.zeros(batch, anchors), torch.zeros(batch, anchors, 2),
                                     gt.boxes, gt.classes, gt.valid, list(grid.shapes), GROUP_STRIDES, ANCHOR_SIZES)


def test_shape_iou_hand_values():
    assert shape_iou(torch.tensor([10.0, 13.0]), torch.tensor([10.0, 13.0])).item() == pytest.approx(1.0)
    assert shape_iou(torch.tensor([5.0, 13.0]), torch.tensor([10.0, 13.0])).item() == pytest.approx(0.5)
    # 4x2 against 2x4: overlap 2x2 = 4, union 8 + 8 - 4 = 12
    assert shape_iou(torch.tensor([4.0, 2.0]), torch.tensor([2.0, 4.0])).item() == pytest.approx(1 / 3)
    pairwise = shape_iou(torch.rand(2, 5, 1, 2) * 50 + 1, torch.tensor(ANCHOR_SIZES, dtype=torch.float32))
    assert pairwise.shape == (2, 5, 9) and bool(((pairwise > 0) & (pairwise <= 1)).all())


def test_best_rule_hand_worked():
    grid = grid_for(128)  # maps 16, 8, 4
    # 12x14 at (20, 21): best anchor (10, 13), group 0, cell (2, 2) of the 16x16 map;
    # 150x200 at (127.9, 5): best (156, 198), group 7 (stride 32), cell (3, 0) of the 4x4 map
    pairs = yolov3_pairs(truth([[[20.0, 21.0, 12.0, 14.0], [127.9, 5.0, 150.0, 200.0]]]), grid)
    assert pairs.group.tolist() == [0, 7]
    assert list(zip(pairs.cell_x.tolist(), pairs.cell_y.tolist())) == [(2, 2), (3, 0)]
    starts = grid.group_starts
    assert pairs.anchor.tolist() == [starts[0] + 2 * 16 + 2, starts[7] + 0 * 4 + 3]


def test_centre_outside_the_map_is_clamped():
    pairs = yolov3_pairs(truth([[[130.0, -3.0, 10.0, 13.0]]]), grid_for(128))
    assert (pairs.group.item(), pairs.cell_x.item(), pairs.cell_y.item()) == (0, 15, 0)


def test_conflicts_go_to_the_higher_shape_iou_then_the_smaller_area():
    grid = grid_for(128)
    # both claim group 0 at cell (2, 2): 10x12 (shape IoU 120/130) beats 10x13's neighbour 9x13
    out = yolov3_assign(inputs_for(truth([[[20.0, 20.0, 9.0, 13.0], [21.0, 22.0, 10.0, 12.5]]]), grid))
    anchor = grid.group_starts[0] + 2 * 16 + 2
    assert out.fg_mask.sum().item() == 1 and out.matched_gt[0, anchor].item() == 1
    # equal shape IoU 0.5 with (10, 13): 20x13 (gt 0) and 5x13 (gt 1): the smaller area wins
    out = yolov3_assign(inputs_for(truth([[[20.0, 20.0, 20.0, 13.0], [21.0, 22.0, 5.0, 13.0]]]), grid))
    assert out.fg_mask.sum().item() == 1 and out.matched_gt[0, anchor].item() == 1


def brute_force_best(gt: GroundTruth, grid: AnchorGrid) -> dict[tuple[int, int], int]:
    """Plain loops: each gt's best anchor among the 9 at its centre cell; conflicts by shape IoU,
    then smaller area, then lower gt index. Returns {(image, anchor): gt}."""
    won: dict[tuple[int, int], tuple[tuple[float, float, int], int]] = {}
    starts = grid.group_starts
    for b in range(gt.boxes.shape[0]):
        for g in range(gt.boxes.shape[1]):
            if not gt.valid[b, g]:
                continue
            cx, cy, w, h = gt.boxes[b, g].tolist()
            best, best_iou = 0, -1.0
            for k, (aw, ah) in enumerate(ANCHOR_SIZES):
                inter = min(w, aw) * min(h, ah)
                iou = inter / (w * h + aw * ah - inter)
                if iou > best_iou:
                    best, best_iou = k, iou
            stride = GROUP_STRIDES[best]
            size = grid.shapes[best][1]
            i = min(max(int(cx // stride), 0), size - 1)
            j = min(max(int(cy // stride), 0), size - 1)
            key = (-best_iou, w * h, g)
            slot = (b, starts[best] + j * size + i)
            if slot not in won or key < won[slot][0]:
                won[slot] = (key, g)
    return {slot: g for slot, (_, g) in won.items()}


def test_best_rule_equals_brute_force_on_random_gts():
    grid = grid_for(128)
    gen = torch.Generator().manual_seed(3)
    rows = []
    for n in (12, 0, 30, 5):
        centre = torch.rand(n, 2, generator=gen) * 140 - 6  # some near or past the borders
        size = torch.exp(torch.rand(n, 2, generator=gen) * 5.5) + 2  # 3 to ~250 px
        rows.append(torch.cat([centre, size], 1).round(decimals=1).tolist())
    rows[3] += [rows[3][0], rows[3][0]]  # duplicates: contested anchors
    gt = truth(rows)
    out = yolov3_assign(inputs_for(gt, grid))
    expected = brute_force_best(gt, grid)
    actual = {(b, a): out.matched_gt[b, a].item() for b, a in out.fg_mask.nonzero().tolist()}
    assert actual == {(b, a): g for (b, a), g in expected.items()}
    assert out.num_fg.item() == len(expected) and out.num_gt.item() == sum(map(len, rows))


def test_ignore_mask_and_matched_iou():
    grid = grid_for(64)  # maps 8, 4, 2
    gt = truth([[[20.0, 20.0, 10.0, 13.0]], []])
    boxes = torch.tensor([-500.0, -500.0, 1.0, 1.0]).expand(2, grid.num_anchors, 4).clone()
    positive = grid.group_starts[0] + 2 * 8 + 2
    near = grid.group_starts[1] + 2 * 8 + 2  # same cell, another anchor: predicts the gt almost exactly
    far = grid.group_starts[3] + 1 * 4 + 1  # stride 16: IoU 0.4 with the gt
    boxes[0, positive] = torch.tensor([21.0, 20.0, 10.0, 13.0])
    boxes[0, near] = torch.tensor([20.0, 20.0, 10.0, 12.0])
    boxes[0, far] = torch.tensor([20.0, 20.0, 10.0, 13.0 * 0.4])
    boxes[1, near] = torch.tensor([20.0, 20.0, 10.0, 13.0])  # image 1 has no gt
    out = yolov3_assign(inputs_for(gt, grid, boxes))
    assert out.fg_mask.nonzero().tolist() == [[0, positive]]
    assert out.ignore_mask.nonzero().tolist() == [[0, near]]
    iou = aligned_iou_cxcywh(boxes[0, positive:positive + 1], gt.boxes[0, :1]).item()
    assert out.matched_iou[0, positive].item() == pytest.approx(iou) and iou == pytest.approx(117 / 143)
    assert not yolov3_assign(inputs_for(gt, grid, boxes), ignore_iou=1.01).ignore_mask.any()
    assert yolov3_assign(inputs_for(gt, grid, boxes), ignore_iou=0.3).ignore_mask.sum().item() == 2


def test_best_gt_iou_is_chunk_independent_and_matches_loops():
    gen = torch.Generator().manual_seed(5)
    boxes = torch.cat([torch.rand(3, 40, 2, generator=gen) * 64, torch.rand(3, 40, 2, generator=gen) * 30 + 2], -1)
    gts = torch.cat([torch.rand(3, 7, 2, generator=gen) * 64, torch.rand(3, 7, 2, generator=gen) * 30 + 2], -1)
    valid = torch.rand(3, 7, generator=gen) > 0.3
    whole = best_gt_iou(boxes, gts, valid)
    assert torch.equal(whole, best_gt_iou(boxes, gts, valid, max_elements=1))
    for b in range(3):
        for a in range(40):
            ious = [aligned_iou_cxcywh(boxes[b, a:a + 1], gts[b, g:g + 1], eps=0).item() for g in range(7) if valid[b, g]]
            assert whole[b, a].item() == pytest.approx(max(ious, default=0.0), abs=1e-6)


def test_no_gts_no_positives():
    grid = grid_for(64)
    out = yolov3_assign(inputs_for(truth([[], []]), grid))
    assert out.num_fg.item() == 0 and out.num_gt.item() == 0 and not out.ignore_mask.any()
    with pytest.raises(ValueError, match="rule"):
        yolov3_pairs(truth([[[1.0, 1.0, 2.0, 2.0]]]), grid, rule="nearest")


# --- the ratio rule against pytorchyolo 1.8.0's build_targets (read-only comparison) ----------

def load_pytorchyolo_loss() -> types.ModuleType:
    """``pytorchyolo/utils/loss.py`` loaded by path into a throwaway package whose ``utils`` module
    is a stub (the real one imports imgaug, tqdm, ...); sys.modules is left as it was."""
    spec = importlib.util.find_spec("pytorchyolo")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("pytorchyolo==1.8.0 is not installed: make install-dev installs it (--no-deps)")
    path = Path(list(spec.submodule_search_locations)[0]) / "utils" / "loss.py"
    package = "_pytorchyolo_loss_reference"
    stub = types.ModuleType(f"{package}.utils")
    stub.to_cpu = lambda tensor: tensor.detach().cpu()
    saved = {name: sys.modules.get(name) for name in (package, f"{package}.utils", f"{package}.loss")}
    try:
        sys.modules[package] = types.ModuleType(package)
        sys.modules[package].__path__ = []
        sys.modules[f"{package}.utils"] = stub
        loss_spec = importlib.util.spec_from_file_location(f"{package}.loss", path)
        module = importlib.util.module_from_spec(loss_spec)
        loss_spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


def test_ratio_rule_equals_pytorchyolo_build_targets():
    reference = load_pytorchyolo_loss()
    size, batch = 256, 3
    grid = grid_for(size)
    gen = torch.Generator().manual_seed(7)
    rows, labels = [], []
    for b, n in enumerate((9, 14, 6)):
        centre = torch.rand(n, 2, generator=gen, dtype=torch.float64) * size
        centre[:2] = torch.tensor([[0.3, 255.2], [254.9, 1.1]], dtype=torch.float64)  # at the borders
        wh = torch.exp(torch.rand(n, 2, generator=gen, dtype=torch.float64) * 6.0) + 2  # 3 to ~400 px
        classes = torch.randint(0, 5, (n,), generator=gen)
        rows.append(torch.cat([centre, wh], 1))
        labels.append(classes)
    # pytorchyolo: (image, class, x, y, w, h) normalised to the image; predictions [B, 3, H, W, 5+C]
    flat = torch.cat([torch.cat([torch.full((len(r), 1), float(b), dtype=torch.float64), labels[b][:, None].double(),
                                 r / size], 1) for b, r in enumerate(rows)])
    p = [torch.zeros(batch, 3, size // s, size // s, 10) for s in LEVEL_STRIDES]
    layers = [types.SimpleNamespace(anchors=torch.tensor(level, dtype=torch.float64), stride=s)
              for level, s in zip(YOLOV3_ANCHORS, LEVEL_STRIDES)]
    tcls, tbox, indices, _ = reference.build_targets(p, flat, types.SimpleNamespace(yolo_layers=layers))
    expected = set()
    for level, ((b, a, gj, gi), cls, box) in enumerate(zip(indices, tcls, tbox)):
        for k in range(len(b)):
            expected.add((b[k].item(), level, a[k].item(), gj[k].item(), gi[k].item(), cls[k].item(),
                          tuple(round(v, 6) for v in box[k].tolist())))

    width = max(len(r) for r in rows)
    boxes = torch.zeros(batch, width, 4, dtype=torch.float64)
    valid = torch.zeros(batch, width, dtype=torch.bool)
    classes = torch.zeros(batch, width, dtype=torch.long)
    for b, r in enumerate(rows):
        boxes[b, :len(r)], valid[b, :len(r)], classes[b, :len(r)] = r, True, labels[b]
    pairs = yolov3_pairs(GroundTruth(boxes, classes, valid), grid, rule="ratio")
    actual = set()
    for b, g, k, i, j in zip(*(t.tolist() for t in (pairs.image, pairs.gt, pairs.group, pairs.cell_x, pairs.cell_y))):
        stride = GROUP_STRIDES[k]
        cx, cy, w, h = (boxes[b, g] / stride).tolist()
        box = (cx - int(cx), cy - int(cy), w, h)  # pytorchyolo's offset from the unclamped cell, grid units
        actual.add((b, k // 3, k % 3, j, i, classes[b, g].item(), tuple(round(v, 6) for v in box)))
    assert len(expected) > 20 and len({t[1] for t in expected}) == 3
    assert actual == expected
