"""The parts of the fine-tuning recipe, each on its own: the running positive-count normaliser,
the frozen trunk, and fitting new class rows."""

from __future__ import annotations

import pytest
import torch

from tests.test_losses import STRIDES, make_levels
from yoloxkit.engine.class_rows import _fit_level
from yoloxkit.engine.freeze import freeze_trunk, keep_frozen_eval
from yoloxkit.engine.optim import build_optimizer
from yoloxkit.losses import YoloxLoss
from yoloxkit.trainable import build_model


def _targets(batch: int, boxes_per_image: int) -> torch.Tensor:
    targets = torch.zeros(batch, 4, 5)
    for i in range(batch):
        for j in range(boxes_per_image):
            targets[i, j] = torch.tensor([j % 3, 20.0 + 8 * j, 24.0, 24.0, 20.0])
    return targets


def test_running_normaliser_keeps_an_empty_batch_at_the_scale_of_the_others():
    batch = YoloxLoss(normalizer="batch")
    running = YoloxLoss(normalizer="running", momentum=0.9)
    full, empty = _targets(2, 3), torch.zeros(2, 4, 5)
    normal = [loss(make_levels(), full, STRIDES)["conf_loss"].item() for loss in (batch, running)]
    assert normal[0] == pytest.approx(normal[1])  # the first batch: both divide by its positives
    positives = running.running_positives
    assert positives is not None and positives > 1
    spike = batch(make_levels(), empty, STRIDES)["conf_loss"].item()
    calm = running(make_levels(), empty, STRIDES)["conf_loss"].item()
    assert spike > 2 * normal[0]  # official: an empty batch is divided by 1 (84 anchors here; 16,800 in a batch of 8 at 320)
    assert calm == pytest.approx(spike / (0.9 * positives + 0.1), rel=1e-4)
    assert calm < normal[0]
    # the running mean is state that a resumed run continues
    restored = YoloxLoss()
    restored.load_state_dict(running.state_dict())
    assert (restored.normalizer, restored.running_positives) == ("running", running.running_positives)
    with pytest.raises(ValueError, match="normalizer"):
        YoloxLoss(normalizer="mean")


def test_frozen_trunk_keeps_weights_and_batchnorm_statistics_while_the_head_learns():
    torch.manual_seed(0)
    model = build_model("yolox-nano", num_classes=3)
    frozen = freeze_trunk(model)
    assert frozen == sum(p.numel() for p in model.backbone.parameters())
    optimizer = build_optimizer(model, lr=0.05)
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in model.backbone.parameters()}
    trunk_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    model.train()
    keep_frozen_eval(model)
    assert not any(m.training for m in model.backbone.modules()) and model.head.training
    for _ in range(2):
        loss = model(torch.rand(2, 3, 64, 64) * 255, _targets(2, 2))["total_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in trunk_before.items())
    changed = [k for k, v in head_before.items() if not torch.equal(v, model.head.state_dict()[k])]
    assert any("cls_preds" in k for k in changed) and any("running_mean" in k for k in changed)


def test_fitting_a_class_row_separates_its_positives():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(400, 16, generator=gen)
    direction = torch.randn(16, generator=gen)
    is_new = (features @ direction) > 0.5
    targets = is_new.float()[:, None] * 0.8  # one-hot times an IoU of 0.8, as the class loss
    weight, bias = _fit_level(features, targets, torch.zeros(1, 16), torch.tensor([-4.6]), l2=0.01, steps=100)
    scores = torch.sigmoid(features @ weight.T + bias)[:, 0]
    assert scores[is_new].min() > scores[~is_new].median()
    assert scores[is_new].mean() > 0.5 > scores[~is_new].mean()
    # a strong pull towards the start keeps the row near it
    w_strong, b_strong = _fit_level(features, targets, torch.zeros(1, 16), torch.tensor([-4.6]), l2=100.0, steps=100)
    assert w_strong.norm() < 0.1 * weight.norm()
