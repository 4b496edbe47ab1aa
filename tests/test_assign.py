"""Unit tests of the SimOTA geometry prior, IoU, dynamic k, matching and conflict rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_convert, box_iou

from yoloxkit.assign.geometry import (
    aligned_iou_cxcywh,
    anchor_centers,
    candidate_anchors,
    center_prior,
    pairwise_iou_cxcywh,
)
from yoloxkit.assign.inputs import AnchorGrid, AssignInputs, GroundTruth
from yoloxkit.assign.simota import (
    dynamic_k,
    lowest_cost_matches,
    pairwise_class_cost,
    resolve_conflicts,
    simota_assign,
)
from yoloxkit.assign.visualize import draw_assignments


def test_anchor_centers_order_and_values():
    grid, stride, centers = anchor_centers([(2, 3), (1, 2)], (8, 16))
    assert grid.tolist()[:4] == [[0, 0], [1, 0], [2, 0], [0, 1]]  # row-major, x first
    assert stride.tolist() == [8] * 6 + [16] * 2
    assert centers[0].tolist() == [4, 4]
    assert centers[5].tolist() == [20, 12]
    assert centers[7].tolist() == [24, 8]


def test_center_prior_is_an_open_square_of_1_5_strides():
    _, stride, centers = anchor_centers([(6, 6)], (8,))
    # gt centre (16, 16): reach 12 -> anchor centres strictly inside (4, 28): 12 and 20.
    prior = center_prior(torch.tensor([[16.0, 16.0, 2.0, 2.0]]), centers, stride)[0].reshape(6, 6)
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[1:3, 1:3] = True
    assert torch.equal(prior, expected)
    # gt centre (14, 14): the interval (2, 26) holds 4, 12 and 20; the gt size is irrelevant.
    for size in (1.0, 400.0):
        prior = center_prior(torch.tensor([[14.0, 14.0, size, size]]), centers, stride)[0].reshape(6, 6)
        expected = torch.zeros(6, 6, dtype=torch.bool)
        expected[0:3, 0:3] = True
        assert torch.equal(prior, expected)


def test_center_prior_uses_each_anchors_own_stride_and_broadcasts_over_batch():
    _, stride, centers = anchor_centers([(4, 4), (2, 2)], (8, 16))
    gts = torch.tensor([[[16.0, 16.0, 5, 5]], [[40.0, 8.0, 5, 5]]])  # [B=2, G=1, 4]
    prior = center_prior(gts, centers, stride)
    assert prior.shape == (2, 1, 20)
    # stride-16 anchors of image 0: centres 8 and 24 are within 24 of 16 on both axes.
    assert prior[0, 0, 16:].all()
    # image 1, stride 16: x centres 8 (32 away: out) and 24 (16 away: in); y 8 in, 24 in.
    assert prior[1, 0, 16:].tolist() == [False, True, False, True]


def test_candidate_anchors_equals_the_union_of_the_priors():
    gen = torch.Generator().manual_seed(4)
    shapes, strides = [(6, 5), (3, 3), (2, 2)], (8, 16, 32)
    _, stride, centers = anchor_centers(shapes, strides)
    gts = torch.cat([torch.rand(3, 5, 2, generator=gen) * 48, torch.rand(3, 5, 2, generator=gen) * 20], -1)
    gts[0, 0, :2] = torch.tensor([16.0, 14.0])  # exactly on prior boundaries
    valid = torch.rand(3, 5, generator=gen) > 0.3
    valid[2] = False
    expected = (center_prior(gts, centers, stride) & valid.unsqueeze(-1)).any(dim=1)
    actual = candidate_anchors(GroundTruth(gts, torch.zeros(3, 5, dtype=torch.long), valid), AnchorGrid.build(shapes, strides))
    assert torch.equal(actual, expected)
    assert actual[0].any() and not actual[2].any()


def test_center_prior_accepts_per_image_anchor_sets():
    _, stride, centers = anchor_centers([(4, 4)], (8,))
    gts = torch.tensor([[[16.0, 16.0, 4, 4]], [[4.0, 4.0, 4, 4]]])
    shared = center_prior(gts, centers, stride)
    per_image = center_prior(gts, centers.expand(2, -1, -1), stride.expand(2, -1))
    assert torch.equal(shared, per_image)


def test_pairwise_iou_hand_cases():
    a = torch.tensor([[5.0, 5.0, 10.0, 10.0]])
    b = torch.tensor(
        [
            [5.0, 5.0, 10.0, 10.0],  # identical
            [10.0, 5.0, 10.0, 10.0],  # half overlap: 50 / 150
            [15.0, 5.0, 10.0, 10.0],  # touching
            [40.0, 40.0, 4.0, 4.0],  # disjoint
            [5.0, 5.0, 5.0, 5.0],  # contained: 25 / 100
        ]
    )
    iou = pairwise_iou_cxcywh(a, b)
    assert iou.shape == (1, 5)
    assert iou[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0, 0.25])


def test_pairwise_iou_equals_torchvision_and_batches():
    gen = torch.Generator().manual_seed(0)
    a = torch.cat([torch.rand(2, 7, 2, generator=gen) * 100, torch.rand(2, 7, 2, generator=gen) * 50 + 1], -1)
    b = torch.cat([torch.rand(2, 9, 2, generator=gen) * 100, torch.rand(2, 9, 2, generator=gen) * 50 + 1], -1)
    ours = pairwise_iou_cxcywh(a, b)
    assert ours.shape == (2, 7, 9)
    for i in range(2):
        expected = box_iou(box_convert(a[i], "cxcywh", "xyxy"), box_convert(b[i], "cxcywh", "xyxy"))
        assert torch.allclose(ours[i], expected, atol=1e-6)
    assert (ours > 0).any() and (ours == 0).any()


def test_aligned_iou_is_the_diagonal_and_differentiable():
    gen = torch.Generator().manual_seed(1)
    boxes = torch.cat([torch.rand(6, 2, generator=gen) * 20, torch.rand(6, 2, generator=gen) * 20 + 1], -1)
    other = boxes + torch.rand(6, 4, generator=gen)
    pred = other.clone().requires_grad_()
    iou = aligned_iou_cxcywh(pred, boxes)
    assert torch.allclose(iou, pairwise_iou_cxcywh(other, boxes).diagonal(), atol=1e-6)
    iou.sum().backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_dynamic_k_truncates_the_top10_sum_and_is_at_least_one():
    ious = torch.zeros(4, 12)
    ious[0, :3] = torch.tensor([0.9, 0.8, 0.5])  # 2.2 -> 2
    ious[1, :2] = torch.tensor([0.01, 0.02])  # 0.03 -> 1
    ious[2, :] = 1.0  # only the top 10 count -> 10
    ious[3, :4] = torch.tensor([0.75, 0.75, 0.75, 0.7])  # 2.95 -> 2
    assert dynamic_k(ious).tolist() == [2, 1, 10, 2]
    assert dynamic_k(torch.full((1, 3), 0.9)).tolist() == [2]  # fewer than 10 anchors


def test_lowest_cost_matches_takes_k_cheapest_per_gt():
    cost = torch.tensor([[3.0, 1.0, 2.0, 0.5, 9.0], [0.1, 5.0, 0.2, 7.0, 0.3]])
    matching = lowest_cost_matches(cost, torch.tensor([2, 3]))
    assert matching.tolist() == [[False, True, False, True, False], [True, False, True, False, True]]


def test_resolve_conflicts_gives_shared_anchor_to_lowest_cost_gt():
    cost = torch.tensor([[1.0, 2.0, 5.0], [3.0, 1.5, 0.5], [9.0, 0.1, 9.0]])
    matching = torch.tensor([[True, True, False], [False, True, True], [False, False, False]])
    resolved = resolve_conflicts(matching, cost)
    # anchor 1 is claimed by gts 0 and 1; the lowest cost over ALL gts is gt 2's (0.1).
    assert resolved.tolist() == [[True, False, False], [False, False, True], [False, True, False]]
    # a single claim is kept even if another gt is cheaper for that anchor
    assert resolved[0, 0] and cost[0, 0] == cost[:, 0].min()


def test_pairwise_class_cost_equals_explicit_bce_sum():
    gen = torch.Generator().manual_seed(2)
    cls_logits = torch.randn(2, 6, 5, generator=gen) * 3
    obj_logits = torch.randn(2, 6, generator=gen) * 3
    gt_classes = torch.tensor([[0, 4, 2], [1, 1, 3]])
    cost = pairwise_class_cost(cls_logits, obj_logits, gt_classes)
    scores = (cls_logits.sigmoid() * obj_logits.sigmoid().unsqueeze(-1)).sqrt()
    for b in range(2):
        for g in range(3):
            onehot = torch.nn.functional.one_hot(gt_classes[b, g], 5).float().expand(6, 5)
            expected = torch.nn.functional.binary_cross_entropy(scores[b], onehot, reduction="none").sum(-1)
            assert torch.allclose(cost[b, g], expected, rtol=1e-5)


TOY = ([(8, 8)], (8,))


def _toy_problem():
    """One 8x8 stride-8 level; predictions are boxes of size 24 on the cell centres."""
    grid, stride, centers = anchor_centers([(8, 8)], (8,))
    pred = torch.cat([centers, torch.full_like(centers, 24.0)], dim=1)
    return grid, stride, centers, pred


def test_simota_assign_positives_lie_in_the_prior_and_match_ks():
    _, stride, centers, pred = _toy_problem()
    gt_boxes = torch.tensor([[[20.0, 20.0, 24.0, 24.0], [44.0, 44.0, 30.0, 30.0]]])
    pred = pred.unsqueeze(0)
    out = simota_assign(AssignInputs.from_tensors(
        pred,
        torch.zeros(1, 64),
        torch.zeros(1, 64, 3),
        gt_boxes,
        torch.tensor([[0, 2]]),
        torch.tensor([[True, True]]),
        *TOY,
    ))
    prior = center_prior(gt_boxes, centers, stride)[0]
    ks = dynamic_k(pairwise_iou_cxcywh(gt_boxes, pred)[0] * prior.any(0))
    assert ks.tolist()[0] > 1
    for g in range(2):
        mine = out.fg_mask[0] & (out.matched_gt[0] == g)
        assert mine.any() and prior[g][mine].all()
        assert int(mine.sum()) <= int(ks[g])
    # the anchor whose prediction equals the gt box exactly is positive with IoU 1
    exact = 2 * 8 + 2  # centre (20, 20)
    assert out.fg_mask[0, exact] and out.matched_gt[0, exact] == 0
    assert out.matched_iou[0, exact] == pytest.approx(1.0)
    assert int(out.num_fg) == int(out.fg_mask.sum()) and int(out.num_gt) == 2


def test_simota_assign_batch_equals_single_images_and_ignores_padding():
    _, stride, centers, pred = _toy_problem()
    gen = torch.Generator().manual_seed(3)
    preds = pred.unsqueeze(0).repeat(3, 1, 1) + torch.randn(3, 64, 4, generator=gen)
    obj = torch.randn(3, 64, generator=gen)
    cls = torch.randn(3, 64, 4, generator=gen)
    gts = torch.zeros(3, 4, 4)
    gts[0, :3] = torch.tensor([[20.0, 20.0, 24, 24], [24, 20, 30, 16], [50, 40, 20, 28]])
    gts[2, :1] = torch.tensor([[36.0, 30, 40, 40]])
    classes = torch.tensor([[0, 1, 3, 0], [0, 0, 0, 0], [2, 0, 0, 0]])
    valid = torch.tensor([[True, True, True, False], [False] * 4, [True, False, False, False]])
    batch = simota_assign(AssignInputs.from_tensors(preds, obj, cls, gts, classes, valid, *TOY))
    assert not batch.fg_mask[1].any()  # the image without gts has no positives
    for b, n in ((0, 3), (2, 1)):
        alone = simota_assign(AssignInputs.from_tensors(
            preds[b : b + 1], obj[b : b + 1], cls[b : b + 1], gts[b : b + 1, :n], classes[b : b + 1, :n],
            valid[b : b + 1, :n], *TOY,
        ))
        assert torch.equal(alone.fg_mask[0], batch.fg_mask[b])
        assert torch.equal(alone.matched_gt[0][alone.fg_mask[0]], batch.matched_gt[b][batch.fg_mask[b]])
        assert torch.allclose(alone.matched_iou[0], batch.matched_iou[b])
    assert int(batch.num_gt) == 4


def test_simota_assign_gt_far_outside_has_no_candidates():
    _, stride, centers, pred = _toy_problem()
    out = simota_assign(AssignInputs.from_tensors(
        pred.unsqueeze(0), torch.zeros(1, 64), torch.zeros(1, 64, 2),
        torch.tensor([[[500.0, 500.0, 10, 10]]]), torch.tensor([[1]]), torch.tensor([[True]]), *TOY,
    ))
    assert not out.fg_mask.any() and int(out.num_fg) == 0


def test_draw_assignments_marks_boxes_and_positive_centres():
    _, _, centers, _ = _toy_problem()
    images = torch.zeros(1, 3, 64, 64)
    targets = torch.zeros(1, 3, 5)
    targets[0, 0] = torch.tensor([1.0, 20, 20, 24, 24])
    fg = torch.zeros(1, 64, dtype=torch.bool)
    fg[0, 2 * 8 + 2] = True  # centre (20, 20)
    drawn = draw_assignments(images, targets, fg, torch.zeros(1, 64, dtype=torch.long), centers)
    assert len(drawn) == 1 and drawn[0].shape == (64, 64, 3) and drawn[0].dtype == np.uint8
    assert drawn[0][20, 20].any()  # the positive's dot
    assert drawn[0][8, 20].any()  # the top edge of the gt box (y = 20 - 12)
    assert not drawn[0][40:, 40:].any()  # nothing else
    assert not images.any()  # the input is not modified


def test_write_assignment_images_runs_a_model_without_touching_its_state(tmp_path):
    import cv2

    import yoloxkit
    from yoloxkit.engine.assign_images import write_assignment_images

    model = yoloxkit.build_model("yolox-nano", num_classes=3).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0)) * 255
    targets = torch.zeros(2, 4, 5)
    targets[0, :2] = torch.tensor([[1.0, 40, 40, 30, 40], [2.0, 90, 60, 40, 30]])
    paths = write_assignment_images(model, images, targets, tmp_path / "vis", prefix="batch0")
    assert [p.name for p in paths] == ["batch0_0.png", "batch0_1.png"]
    first = cv2.imread(str(paths[0]))
    assert first.shape == (96, 128, 3)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["batch0_0.png", "batch0_1.png"]


def test_the_loose_arguments_of_old_give_the_same_assignment_with_one_warning():
    import warnings

    from yoloxkit import deprecation

    _, _, _, pred = _toy_problem()
    loose = (pred.unsqueeze(0), torch.zeros(1, 64), torch.zeros(1, 64, 3), torch.tensor([[[20.0, 20.0, 24, 24]]]),
             torch.tensor([[1]]), torch.tensor([[True]]), *TOY)
    bundled = simota_assign(AssignInputs.from_tensors(*loose))
    deprecation._SHOWN.discard("simota_assign")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = simota_assign(*loose)
        simota_assign(*loose)
    assert [w.category for w in caught] == [DeprecationWarning]  # once
    assert torch.equal(old.fg_mask, bundled.fg_mask) and torch.equal(old.matched_iou, bundled.matched_iou)
    with pytest.raises(TypeError):
        simota_assign(AssignInputs.from_tensors(*loose), TOY)


def test_anchor_grid_holds_the_anchor_centres():
    anchors = AnchorGrid.build([(2, 3), (1, 2)], (8, 16))
    grid, stride, centers = anchor_centers([(2, 3), (1, 2)], (8, 16))
    assert anchors.shapes == ((2, 3), (1, 2)) and anchors.level_strides == (8, 16) and anchors.num_anchors == 8
    assert torch.equal(anchors.grid, grid) and torch.equal(anchors.strides, stride)
    assert torch.equal(anchors.centers, centers)
