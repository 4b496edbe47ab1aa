"""Unit tests of the YOLOX loss terms and of ``yolox_loss`` on hand-made head outputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from yoloxkit.errors import DatasetError
from yoloxkit.assign.geometry import aligned_iou_cxcywh
from yoloxkit.losses import assign_targets, flatten_predictions, iou_loss, l1_targets, split_targets, yolox_loss

STRIDES = (8, 16, 32)
SHAPES = [(8, 8), (4, 4), (2, 2)]  # a 64x64 input


def make_levels(num_classes: int = 3, batch: int = 2, seed: int = 0, requires_grad: bool = True):
    gen = torch.Generator().manual_seed(seed)
    levels = []
    for h, w in SHAPES:
        reg = torch.randn(batch, 4, h, w, generator=gen) * 0.1
        obj = torch.randn(batch, 1, h, w, generator=gen) - 3
        cls = torch.randn(batch, num_classes, h, w, generator=gen) - 2
        levels.append(tuple(t.requires_grad_(requires_grad) for t in (reg, obj, cls)))
    return levels


def test_iou_loss_values():
    box = torch.tensor([[10.0, 10.0, 8.0, 8.0]])
    assert iou_loss(box, box).item() == pytest.approx(0.0, abs=1e-6)
    assert iou_loss(box, torch.tensor([[40.0, 40.0, 8.0, 8.0]])).item() == pytest.approx(1.0)
    half = torch.tensor([[14.0, 10.0, 8.0, 8.0]])  # IoU 1/3
    assert iou_loss(box, half).item() == pytest.approx(1 - 1 / 9)


def test_l1_targets_invert_the_decode():
    levels = make_levels()
    preds = flatten_predictions(levels, STRIDES)
    raw, boxes = preds.raw_reg[0].detach(), preds.boxes[0].detach()
    assert torch.allclose(l1_targets(boxes, preds.grid, preds.strides), raw, atol=1e-5)


def test_flatten_predictions_order_and_decode():
    levels = make_levels()
    preds = flatten_predictions(levels, STRIDES)
    assert preds.raw_reg.shape == (2, 64 + 16 + 4, 4) and preds.cls_logits.shape == (2, 84, 3)
    reg = levels[1][0].detach()
    anchor = 64 + 1 * 4 + 2  # level 1, row 1, column 2
    expected_cx = (reg[0, 0, 1, 2] + 2) * 16
    expected_w = torch.exp(reg[0, 2, 1, 2]) * 16
    assert preds.boxes[0, anchor, 0].item() == pytest.approx(expected_cx.item())
    assert preds.boxes[0, anchor, 2].item() == pytest.approx(expected_w.item())
    assert preds.obj_logits[0, anchor].item() == levels[1][1][0, 0, 1, 2].item()


def test_split_targets_trims_padding_and_rejects_bad_classes():
    targets = torch.zeros(2, 6, 5)
    targets[0, :2] = torch.tensor([[0.0, 10, 10, 4, 4], [2.0, 20, 20, 4, 4]])
    boxes, classes, valid = split_targets(targets, num_classes=3)
    assert boxes.shape == (2, 2, 4) and valid.tolist() == [[True, True], [False, False]]
    assert classes[0].tolist() == [0, 2]
    targets[0, 1, 0] = 3
    with pytest.raises(DatasetError, match="class id 3"):
        split_targets(targets, num_classes=3)
    with pytest.raises(DatasetError, match="targets"):
        split_targets(torch.zeros(2, 5), num_classes=3)


def test_loss_without_gts_is_pure_background_objectness():
    levels = make_levels()
    out = yolox_loss(levels, torch.zeros(2, 4, 5), STRIDES, use_l1=True)
    assert set(out) == {"total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss", "num_fg"}
    obj = torch.cat([o.flatten() for _, o, _ in levels])
    expected = F.binary_cross_entropy_with_logits(obj, torch.zeros_like(obj), reduction="sum")
    assert out["conf_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    for term in ("iou_loss", "cls_loss", "l1_loss", "num_fg"):
        assert out[term].item() == 0.0
    out["total_loss"].backward()
    assert levels[0][1].grad.abs().sum() > 0


def test_loss_terms_normalised_by_positives():
    levels = make_levels()
    targets = torch.zeros(2, 3, 5)
    targets[0, 0] = torch.tensor([1.0, 20, 20, 16, 16])
    targets[1, :2] = torch.tensor([[2.0, 40, 30, 30, 20], [0.0, 12, 44, 10, 14]])
    off = yolox_loss(levels, targets, STRIDES, use_l1=False)
    on = yolox_loss(levels, targets, STRIDES, use_l1=True)
    assert off["l1_loss"].item() == 0.0 and on["l1_loss"].item() > 0
    for out in (off, on):
        parts = out["iou_loss"] + out["conf_loss"] + out["cls_loss"] + out["l1_loss"]
        assert out["total_loss"].item() == pytest.approx(parts.item(), rel=1e-6)
    assert on["total_loss"].item() == pytest.approx(off["total_loss"].item() + on["l1_loss"].item(), rel=1e-6)
    # conf_loss is the sum over all anchors divided by the number of positives
    num_fg = off["num_fg"].item() * 3
    assert num_fg >= 3 and num_fg == int(num_fg)
    preds = flatten_predictions(levels, STRIDES)
    assignment, gt_boxes, _ = assign_targets(preds, targets)
    assert int(assignment.num_fg) == num_fg
    fg = assignment.fg_mask
    expected_obj = F.binary_cross_entropy_with_logits(preds.obj_logits, fg.float(), reduction="sum") / num_fg
    assert off["conf_loss"].item() == pytest.approx(expected_obj.item(), rel=1e-5)
    b, a = fg.nonzero(as_tuple=True)
    matched = gt_boxes[b, assignment.matched_gt[b, a]]
    expected_iou = 5.0 * (1 - aligned_iou_cxcywh(preds.boxes[fg], matched) ** 2).sum() / num_fg
    assert off["iou_loss"].item() == pytest.approx(expected_iou.item(), rel=1e-5)


def test_minimising_the_loss_fits_the_boxes():
    """Gradient descent on the head outputs alone drives the loss and the box error down."""
    levels = make_levels(seed=4)
    targets = torch.zeros(2, 3, 5)
    targets[0, :2] = torch.tensor([[1.0, 20, 20, 16, 16], [0.0, 44, 40, 24, 30]])
    targets[1, 0] = torch.tensor([2.0, 30, 30, 40, 36])
    params = [t for level in levels for t in level]
    optimizer = torch.optim.Adam(params, lr=0.05)
    history = []
    for _ in range(60):
        optimizer.zero_grad()
        out = yolox_loss(levels, targets, STRIDES, use_l1=True)
        out["total_loss"].backward()
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in out.items()})
    assert history[-1]["total_loss"] < 0.3 * history[0]["total_loss"]
    assert history[-1]["iou_loss"] < 0.5 * history[0]["iou_loss"]
    assert all(math.isfinite(h["total_loss"]) for h in history)


@pytest.mark.parametrize(("setting", "value"), [
    ("normalizer", "mean"), ("pss_targets", "nms"), ("momentum", 1.0), ("pss_weight", -1.0),
    ("use_l1", "yes"), ("detector_loss", 2), ("running_positives", 0.0),
])
def test_yolox_loss_checks_every_setting_at_construction_and_after(setting, value):
    from yoloxkit.losses import YoloxLoss

    with pytest.raises(ValueError, match=setting):
        YoloxLoss(**{setting: value})
    criterion = YoloxLoss()
    with pytest.raises(ValueError, match=setting):
        setattr(criterion, setting, value)
    assert getattr(criterion, setting) == getattr(YoloxLoss(), setting)  # left unchanged
    with pytest.raises(ValueError, match=setting):
        criterion.load_state_dict({setting: value})


def test_yolox_loss_refuses_unknown_settings_and_round_trips_its_state():
    from yoloxkit.losses import YoloxLoss

    criterion = YoloxLoss(use_l1=True, normalizer="running", momentum=0.5, pss_weight=2.0, detector_loss=False,
                          pss_targets="gt")
    with pytest.raises(AttributeError, match="use_L1"):
        criterion.use_L1 = True  # a typo never passes silently
    copy = YoloxLoss()
    copy.load_state_dict(criterion.state_dict())
    assert copy == criterion


def test_one_bundle_per_step_feeds_both_assigners():
    """The criterion splits the targets and builds the anchor grid once; the assigners read them."""
    from yoloxkit.assign.inputs import AssignInputs

    levels = make_levels()
    preds = flatten_predictions(levels, STRIDES)
    targets = torch.zeros(2, 3, 5)
    targets[0, 0] = torch.tensor([1.0, 20, 20, 16, 16])
    inputs = preds.assign_inputs(targets)
    assert isinstance(inputs, AssignInputs) and inputs.anchors is preds.anchors
    assert not inputs.predictions.boxes.requires_grad
    assert inputs.targets.boxes.shape == (2, 1, 4) and inputs.targets.valid.tolist() == [[True], [False]]
    assignment, gt_boxes, _ = assign_targets(preds, targets)
    assert torch.equal(gt_boxes, inputs.targets.boxes) and int(assignment.num_gt) == 1
