"""Train-mode losses and gradients equal the reference implementation's.

Both models get the same random weights and BatchNorm statistics and run in train mode on
the same 2x3x256x320 batch. The regression biases are shifted so that predicted boxes are a
few strides wide: then gts get several positives (dynamic k > 1) and anchors are contested,
which the assertions on the assignment below check, so the whole of SimOTA is exercised.

Each case runs one forward of each model and compares, with L1 off and on, every loss
term and the gradient with respect to every raw head output (which, the networks being
identical, fixes the parameter gradients); the norm of the parameter gradient is compared
with L1 on (all four terms active). Coverage, to keep the suite well under two minutes on
2 CPU cores: yolox-nano and yolox-s run all three target sets and compare the gradient of
all parameters; the other five models run the 40-objects set and compare the gradient of
the head's parameters (the backbone's backward is the costly part for them).
"""

from __future__ import annotations

import math

import pytest
import torch

import yoloxkit
from yoloxkit.assign.simota import dynamic_k
from yoloxkit.losses import assign_targets, flatten_predictions, yolox_loss

from .reference import build_reference, randomize

HEIGHT, WIDTH = 256, 320
TERMS = ("total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss")


def make_targets(counts: tuple[int, int], seed: int, max_labels: int = 50) -> torch.Tensor:
    """Padded targets with ``counts[b]`` random boxes (class, cx, cy, w, h) in image ``b``."""
    gen = torch.Generator().manual_seed(seed)
    targets = torch.zeros(len(counts), max_labels, 5)
    for b, n in enumerate(counts):
        size = torch.rand(n, 2, generator=gen) * 100 + 8
        center = torch.rand(n, 2, generator=gen) * torch.tensor([WIDTH, HEIGHT])
        targets[b, :n, 0] = torch.randint(0, 80, (n,), generator=gen).float()
        targets[b, :n, 1:3] = center
        targets[b, :n, 3:5] = size
    return targets


TARGET_SETS = {
    "few": make_targets((3, 5), seed=11),
    "one-empty": make_targets((4, 0), seed=12),
    "forty": make_targets((40, 40), seed=13),
}

FULL_COVERAGE = ("yolox-nano", "yolox-s")
CASES = [
    (name, target_set)
    for name, spec in yoloxkit.models.MODEL_SPECS.items()
    if not spec.end_to_end and not spec.roadmap
    for target_set in (TARGET_SETS if name in FULL_COVERAGE else ("forty",))
]

_MODELS: dict[str, tuple[torch.nn.Module, torch.nn.Module]] = {}


def model_pair(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(ours, reference) in train mode with identical random weights, cached per model."""
    if name not in _MODELS:
        _MODELS.clear()  # keep at most one pair of big models in memory
        ref = build_reference(name)
        randomize(ref, seed=sum(map(ord, name)))
        with torch.no_grad():
            for conv in ref.head.reg_preds:  # boxes of ~3 strides: larger IoUs, contested anchors
                conv.bias[2:4] += math.log(3.0)
        ours = yoloxkit.build_model(name)
        ours.load_state_dict(ref.state_dict(), strict=True)
        _MODELS[name] = (ours.train(), ref.train())
    return _MODELS[name]


class ReferenceHeadOutputs:
    """Captures the reference head's raw per-level outputs (reg, obj, cls) during a forward."""

    def __init__(self, head: torch.nn.Module) -> None:
        self.outputs: dict[str, list[torch.Tensor]] = {"reg": [], "obj": [], "cls": []}
        for kind, convs in (("reg", head.reg_preds), ("obj", head.obj_preds), ("cls", head.cls_preds)):
            for conv in convs:
                conv.register_forward_hook(lambda _m, _i, out, kind=kind: self.outputs[kind].append(out))

    def levels(self) -> list[torch.Tensor]:
        """Flat list reg0, obj0, cls0, reg1, ... of the last forward, in our level order."""
        count = len(self.outputs["reg"])
        flat = [self.outputs[kind][k] for k in range(count) for kind in ("reg", "obj", "cls")]
        for values in self.outputs.values():
            values.clear()
        return flat


def grad_norm(grads) -> float:
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads if g is not None))


@pytest.mark.parametrize("name,target_set", CASES)
def test_losses_and_gradients_match_reference(name, target_set):
    """Per L1 setting: every loss term, the gradient w.r.t. every raw head output, and (with
    L1 on, where all four terms contribute) the norm of the gradient of all parameters."""
    ours, ref = model_pair(name)
    images = torch.rand(2, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(5)) * 255
    targets = TARGET_SETS[target_set]
    capture = ReferenceHeadOutputs(ref.head) if not hasattr(ref, "_capture") else ref._capture
    ref._capture = capture

    our_levels = ours.head.forward_levels(ours.backbone(images))
    our_flat = [t for level in our_levels for t in level]
    ref_features = ref.backbone(images)
    for use_l1 in (False, True):
        ref.head.use_l1 = use_l1
        loss_values = ref.head(ref_features, targets, images)
        expected = dict(zip(("total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss", "num_fg"), loss_values))
        ref_flat = capture.levels()
        actual = yolox_loss(our_levels, targets, ours.head.strides, use_l1)

        for term in TERMS:
            value = float(expected[term].detach()) if torch.is_tensor(expected[term]) else float(expected[term])
            assert math.isfinite(value)
            assert float(actual[term]) == pytest.approx(value, rel=1e-4, abs=1e-6), (term, use_l1)
        assert (float(expected["l1_loss"]) > 0) == use_l1
        assert float(actual["num_fg"]) == pytest.approx(float(expected["num_fg"]), rel=1e-6)

        ref_grads = torch.autograd.grad(expected["total_loss"], ref_flat, retain_graph=True)
        our_grads = torch.autograd.grad(actual["total_loss"], our_flat, retain_graph=True)
        for mine, theirs in zip(our_grads, ref_grads):
            scale = theirs.abs().max().item()
            assert (mine - theirs).abs().max().item() <= 1e-4 * scale + 1e-9, use_l1
        assert grad_norm(our_grads) == pytest.approx(grad_norm(ref_grads), rel=1e-4)

    # Full backward for the two fully covered models; the head's parameters (autograd then
    # stops at the head) for the big ones, to keep the suite's time in budget.
    full = name in FULL_COVERAGE
    ref_params = list((ref if full else ref.head).parameters())
    our_params = list((ours if full else ours.head).parameters())
    expected_norm = grad_norm(torch.autograd.grad(expected["total_loss"], ref_params, allow_unused=True))
    actual_norm = grad_norm(torch.autograd.grad(actual["total_loss"], our_params, allow_unused=True))
    assert expected_norm > 0
    assert actual_norm == pytest.approx(expected_norm, rel=1e-3)


def test_parity_scenarios_exercise_dynamic_k_and_conflicts():
    """The target sets really produce k > 1 and anchors claimed by several gts."""
    ours, _ = model_pair("yolox-nano")
    images = torch.rand(2, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(5)) * 255
    ours.train()
    with torch.no_grad():
        preds = flatten_predictions(ours.head.forward_levels(ours.backbone(images)), ours.head.strides)
    from yoloxkit.assign.geometry import center_prior, pairwise_iou_cxcywh

    for name in ("few", "forty"):
        assignment, gt_boxes, _ = assign_targets(preds, TARGET_SETS[name])
        prior = center_prior(gt_boxes, preds.centers, preds.strides).any(dim=1, keepdim=True)
        ious = pairwise_iou_cxcywh(gt_boxes, preds.boxes) * prior
        ks = dynamic_k(ious)
        valid = gt_boxes[..., 2] > 0
        assert (ks[valid] > 1).any(), name
        assert int(assignment.num_fg) > int(valid.sum())
    # With 40 objects, some gts lose anchors to others: fewer positives than the k's sum.
    assignment, gt_boxes, _ = assign_targets(preds, TARGET_SETS["forty"])
    prior = center_prior(gt_boxes, preds.centers, preds.strides).any(dim=1, keepdim=True)
    ks = dynamic_k(pairwise_iou_cxcywh(gt_boxes, preds.boxes) * prior)
    assert int(assignment.num_fg) < int(ks.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_assignment_matches_reference_head(seed):
    """Positives, matched gts and their IoUs equal the reference's per-image assignment."""
    import warnings

    from yolox.models import YoloxHead

    from yoloxkit.assign.geometry import anchor_centers
    from yoloxkit.assign.simota import simota_assign

    gen = torch.Generator().manual_seed(seed)
    size, strides, batch, num_classes = 320, (8, 16, 32), 3, 20
    grid, stride, centers = anchor_centers([(size // s, size // s) for s in strides], strides)
    raw = torch.randn(batch, grid.shape[0], 4, generator=gen) * 0.5
    boxes = torch.cat([(raw[..., :2] + grid) * stride[:, None], torch.exp(raw[..., 2:] + 1.0) * stride[:, None]], -1)
    obj = torch.randn(batch, grid.shape[0], generator=gen) * 2
    cls = torch.randn(batch, grid.shape[0], num_classes, generator=gen) * 2
    counts = [30, 0, 7]
    gts = torch.zeros(batch, 30, 4)
    classes = torch.zeros(batch, 30, dtype=torch.long)
    for b, n in enumerate(counts):
        wh = torch.rand(n, 2, generator=gen) * 120 + 4
        gts[b, :n] = torch.cat([wh / 2 + torch.rand(n, 2, generator=gen) * (size - wh), wh], -1)
        classes[b, :n] = torch.randint(0, num_classes, (n,), generator=gen)
    valid = torch.arange(30) < torch.tensor(counts)[:, None]
    shapes = [(size // s, size // s) for s in strides]
    ours = simota_assign(boxes, obj, cls, gts, classes, valid, shapes, strides)

    head = YoloxHead(num_classes, width=0.25)
    total_fg = 0
    for b, n in enumerate(counts):
        if n == 0:
            assert not ours.fg_mask[b].any()
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matched_classes, fg, ious, matched, num_fg = head.get_assignments(
                b, n, gts[b, :n], classes[b, :n].float(), boxes[b], stride[None], grid[None, :, 0], grid[None, :, 1],
                cls, obj.unsqueeze(-1),
            )
        assert torch.equal(ours.fg_mask[b], fg)
        assert torch.equal(ours.matched_gt[b][fg], matched)
        assert torch.allclose(ours.matched_iou[b][fg], ious, rtol=1e-5, atol=1e-7)
        total_fg += num_fg
    assert int(ours.num_fg) == total_fg
    assert total_fg > sum(counts)  # several positives per gt: dynamic k > 1 was exercised
