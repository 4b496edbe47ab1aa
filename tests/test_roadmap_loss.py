"""The detection loss with the roadmap's assigners (``YoloxLoss(assigner=...)``): anchor-based box
coding, the YOLOv3 ignore mask, training on leaf tensors, and the default left bit-identical."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from yoloxkit.assign.simota import simota_assign
from yoloxkit.assign.yolov3 import yolov3_assign
from yoloxkit.losses import ASSIGNERS, REG_WEIGHT, YoloxLoss, flatten_predictions, iou_loss, l1_targets
from yoloxkit.models.anchors import YOLOV3_ANCHORS

SIZE = 96
LEVEL_STRIDES = (8, 16, 32)
GROUP_STRIDES = tuple(s for s in LEVEL_STRIDES for _ in range(3))
ANCHOR_SIZES = tuple(wh for level in YOLOV3_ANCHORS for wh in level)


def make_levels(strides: tuple[int, ...], num_classes: int = 3, batch: int = 2, seed: int = 0) -> list:
    gen = torch.Generator().manual_seed(seed)
    levels = []
    for stride in strides:
        h = w = SIZE // stride
        reg = torch.randn(batch, 4, h, w, generator=gen) * 0.1
        obj = torch.randn(batch, 1, h, w, generator=gen) - 3
        cls = torch.randn(batch, num_classes, h, w, generator=gen) - 2
        levels.append(tuple(t.requires_grad_(True) for t in (reg, obj, cls)))
    return levels


def make_targets() -> torch.Tensor:
    targets = torch.zeros(2, 6, 5)
    targets[0, :4] = torch.tensor([[0, 20, 24, 12, 15], [1, 60, 40, 40, 30], [2, 50, 70, 80, 70], [1, 85, 10, 20, 14]])
    targets[1, :2] = torch.tensor([[2, 30, 60, 25, 50], [0, 70, 70, 9, 9]])
    return targets


def setup(assigner: str):
    if assigner == "yolov3":
        return make_levels(GROUP_STRIDES), GROUP_STRIDES, {"anchor_sizes": ANCHOR_SIZES}
    return make_levels(LEVEL_STRIDES), LEVEL_STRIDES, {}


@pytest.mark.parametrize("assigner", ASSIGNERS)
def test_loss_is_finite_has_gradients_and_falls(assigner: str):
    levels, strides, extra = setup(assigner)
    criterion = YoloxLoss(assigner=assigner, use_l1=True)
    targets = make_targets()
    first = criterion(levels, targets, strides, **extra)
    assert all(torch.isfinite(v).all() for v in first.values())
    assert first["num_fg"].item() > 0 and first["iou_loss"].item() > 0 and first["l1_loss"].item() > 0
    first["total_loss"].backward()
    params = [t for level in levels for t in level]
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in params)
    assert all(level[1].grad.abs().sum() > 0 for level in levels)  # objectness: every anchor
    assert sum(level[2].grad.abs().sum() for level in levels) > 0  # classes: the positives
    optimizer = torch.optim.Adam(params, lr=0.05)
    for _ in range(20):
        optimizer.zero_grad()
        loss = criterion(levels, targets, strides, **extra)["total_loss"]
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first["total_loss"].item()


def test_anchor_sizes_decode_and_l1_targets():
    levels = make_levels(GROUP_STRIDES)
    preds = flatten_predictions(levels, GROUP_STRIDES, ANCHOR_SIZES)
    group, row, col = 4, 1, 2  # stride 16, anchor (62, 45); the 6x6 map
    anchor = 3 * 144 + 36 + row * 6 + col
    raw = levels[group][0][0, :, row, col].detach()
    expected = torch.stack([(raw[0] + col) * 16, (raw[1] + row) * 16, raw[2].exp() * 62, raw[3].exp() * 45])
    assert torch.allclose(preds.boxes[0, anchor].detach(), expected)
    assert preds.sizes[anchor].tolist() == [62.0, 45.0]
    boxes = preds.boxes[0].detach()
    back = l1_targets(boxes, preds.grid, preds.strides, size=preds.sizes)
    assert torch.allclose(back, preds.raw_reg[0].detach(), atol=1e-5)


def test_ignore_mask_leaves_those_anchors_out_of_conf_loss():
    levels = make_levels(GROUP_STRIDES)
    targets = make_targets()
    with torch.no_grad():  # group 1 (anchor 16x30, not the best) predicts gt 0 of image 0 exactly
        cx, cy, w, h = targets[0, 0, 1:].tolist()
        i, j = int(cx // 8), int(cy // 8)
        levels[1][0][0, :, j, i] = torch.tensor([cx / 8 - i, cy / 8 - j, math.log(w / 16), math.log(h / 30)])
    preds = flatten_predictions(levels, GROUP_STRIDES, ANCHOR_SIZES)
    assignment = yolov3_assign(preds.assign_inputs(targets))
    ignored = assignment.ignore_mask
    assert ignored[0, 144 + j * 12 + i] and not (ignored & assignment.fg_mask).any()
    kept = YoloxLoss(assigner="yolov3")(levels, targets, GROUP_STRIDES, anchor_sizes=ANCHOR_SIZES)
    full = YoloxLoss(assigner="yolov3", ignore_iou=1.01)(levels, targets, GROUP_STRIDES, anchor_sizes=ANCHOR_SIZES)
    dropped = F.softplus(preds.obj_logits[ignored]).sum() / assignment.num_fg.float()  # BCE against 0
    assert torch.allclose(full["conf_loss"] - kept["conf_loss"], dropped, atol=1e-5) and dropped > 0.01
    for key in ("iou_loss", "cls_loss", "num_fg"):
        assert torch.equal(full[key], kept[key])


def test_default_is_bit_identical_to_the_anchor_free_simota_loss():
    """The previous computation written out: stride-sized decode, SimOTA, the five terms."""
    levels = make_levels(LEVEL_STRIDES)
    targets = make_targets()
    got = YoloxLoss(use_l1=True)(levels, targets, LEVEL_STRIDES)
    preds = flatten_predictions(levels, LEVEL_STRIDES)
    stride = preds.strides[:, None]
    boxes = torch.cat([(preds.raw_reg[..., :2] + preds.grid) * stride, torch.exp(preds.raw_reg[..., 2:]) * stride], -1)
    assert torch.equal(boxes, preds.boxes)
    inputs = preds.assign_inputs(targets)
    out = simota_assign(inputs)
    fg = out.fg_mask
    b, a = fg.nonzero(as_tuple=True)
    gt = inputs.targets.boxes[b, out.matched_gt[b, a]]
    cls = inputs.targets.classes[b, out.matched_gt[b, a]]
    n = out.num_fg.float().clamp(min=1)
    expected = {
        "iou_loss": REG_WEIGHT * (iou_loss(boxes[fg], gt).sum() / n),
        "conf_loss": F.binary_cross_entropy_with_logits(preds.obj_logits, fg.float(), reduction="sum") / n,
        "cls_loss": F.binary_cross_entropy_with_logits(
            preds.cls_logits[fg], F.one_hot(cls, 3).float() * out.matched_iou[fg].unsqueeze(-1), reduction="sum") / n,
        "l1_loss": F.l1_loss(preds.raw_reg[fg], torch.cat(
            [gt[:, :2] / stride[a] - preds.grid[a], torch.log(gt[:, 2:] / stride[a] + 1e-8)], 1), reduction="sum") / n,
    }
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    assert out.ignore_mask is None


def test_settings_are_checked_and_saved():
    with pytest.raises(ValueError, match="assigner"):
        YoloxLoss(assigner="atss")
    criterion = YoloxLoss()
    with pytest.raises(ValueError, match="ignore_iou"):
        criterion.ignore_iou = -0.1
    with pytest.raises(ValueError, match="ignore_iou"):
        criterion.ignore_iou = float("nan")
    criterion.assigner, criterion.ignore_iou = "centre3x3", 0.7
    copy = YoloxLoss()
    copy.load_state_dict(criterion.state_dict())
    assert (copy.assigner, copy.ignore_iou) == ("centre3x3", 0.7)
    old = {k: v for k, v in YoloxLoss().state_dict().items() if k not in ("assigner", "ignore_iou")}
    copy.load_state_dict(old)  # a criterion saved before these settings keeps them
    assert (copy.assigner, copy.ignore_iou) == ("centre3x3", 0.7)
    assert ASSIGNERS == ("simota", "yolov3", "centre", "centre3x3")
