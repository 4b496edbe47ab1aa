"""The parts of the fine-tuning recipe that let the whole network train: BatchNorm statistics
re-estimated on the training images, the stem kept frozen, and the trunk's own learning rate."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yoloxkit.engine.batchnorm_calibration import recalibrate_batchnorm
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.freeze import STAGES, freeze_stages, keep_frozen_eval
from yoloxkit.engine.optim import build_optimizer, set_lr
from yoloxkit.models import build_network


def _raw_outputs(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Every level's regression, objectness and class logits, flattened."""
    return [t for level in model.head.forward_levels(model.backbone(images)) for t in level]


def _images(count: int, seed: int, size: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, size, size, generator=gen) * 255


@torch.no_grad()
def test_recalibration_keeps_the_output_and_takes_the_data_statistics():
    torch.manual_seed(0)
    model = build_network("yolox-nano", num_classes=3).eval()
    batches = [_images(4, 1), _images(4, 2)]
    before = model(batches[0])
    changed = recalibrate_batchnorm(model, batches)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert changed == len(bns) > 100
    assert torch.allclose(model(batches[0]), before, rtol=1e-3, atol=1e-3)
    # the stem's running statistics are now those of its input on the two batches
    stem_bn = model.backbone.backbone.stem.conv.bn
    seen: list[torch.Tensor] = []
    hook = stem_bn.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    for images in batches:
        model(images)
    hook.remove()
    features = torch.cat(seen).double().transpose(0, 1).flatten(1)
    assert torch.allclose(stem_bn.running_mean.double(), features.mean(1), rtol=1e-4)
    assert torch.allclose(stem_bn.running_var.double(), features.var(1, unbiased=False), rtol=1e-3)
    # train mode (batch statistics) now computes nearly what eval mode does on the same images
    model.train()
    trained_mode = _raw_outputs(model, torch.cat(batches))
    model.eval()
    eval_mode = _raw_outputs(model, torch.cat(batches))
    gap = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(trained_mode, eval_mode))
    assert gap < 0.05


@torch.no_grad()
def test_recalibration_leaves_frozen_layers_alone():
    torch.manual_seed(0)
    model = build_network("yolox-nano", num_classes=3).eval()
    freeze_stages(model, 1)
    stem_bn = model.backbone.backbone.stem.conv.bn
    stem_before = {k: v.clone() for k, v in stem_bn.state_dict().items()}
    dark2_bn = next(m for m in model.backbone.backbone.dark2.modules() if isinstance(m, nn.BatchNorm2d))
    dark2_mean = dark2_bn.running_mean.clone()
    recalibrate_batchnorm(model, [_images(2, 3)])
    assert all(torch.equal(v, stem_bn.state_dict()[k]) for k, v in stem_before.items())
    assert not torch.equal(dark2_mean, dark2_bn.running_mean)


@pytest.mark.parametrize("model_name", ["yolox-nano", "yolox-darknet53"])
def test_freezing_stages_freezes_the_stem_first_and_keeps_it_in_eval_mode(model_name):
    model = build_network(model_name, num_classes=2)
    backbone = model.backbone.backbone
    stem_params = sum(p.numel() for p in backbone.stem.parameters())
    assert freeze_stages(model, 1) == stem_params
    assert not any(p.requires_grad for p in backbone.stem.parameters())
    assert all(p.requires_grad for p in backbone.dark2.parameters())
    model.train()
    keep_frozen_eval(model)
    assert not any(m.training for m in backbone.stem.modules()) and backbone.dark2.training
    two = build_network(model_name, num_classes=2)
    assert freeze_stages(two, 2) == stem_params + sum(p.numel() for p in two.backbone.backbone.dark2.parameters())
    assert STAGES[:2] == ("stem", "dark2")


def test_trunk_learning_rate_scale_gives_backbone_and_neck_their_own_groups():
    model = build_network("yolox-nano", num_classes=3)
    plain = build_optimizer(model, lr=0.01)
    assert [g["name"] for g in plain.param_groups] == ["norm", "weights", "biases"]
    scaled = build_optimizer(model, lr=0.01, trunk_lr_scale=0.1)
    names = [g["name"] for g in scaled.param_groups]
    assert names == ["trunk_norm", "trunk_weights", "trunk_biases", "norm", "weights", "biases"]
    trunk = {id(p) for p in model.backbone.parameters()}
    for group in scaled.param_groups:
        in_trunk = {id(p) in trunk for p in group["params"]}
        assert in_trunk == {group["name"].startswith("trunk_")}
    total = sum(len(g["params"]) for g in scaled.param_groups)
    assert total == sum(len(g["params"]) for g in plain.param_groups) == len(list(model.parameters()))
    set_lr(scaled, 0.02)
    assert {g["name"]: g["lr"] for g in scaled.param_groups}["trunk_weights"] == pytest.approx(0.002)
    assert {g["name"]: g["lr"] for g in scaled.param_groups}["weights"] == pytest.approx(0.02)


def test_recipes_train_the_whole_network_but_the_stem_when_fine_tuning():
    finetune = TrainConfig(model="yolox-nano", data="x").resolved()
    assert (finetune.recipe, finetune.freeze_trunk, finetune.frozen_stages) == ("finetune", False, 1)
    assert finetune.recalibrate_bn and finetune.trunk_lr_scale == 1.0
    official = TrainConfig(model="yolox-nano", data="x", weights="none").resolved()
    assert (official.recipe, official.freeze_trunk, official.frozen_stages, official.recalibrate_bn) == (
        "official", False, 0, False)


def test_weights_never_bn_folded_keep_their_kernels_and_output_and_get_the_data_statistics(coco_mini, tmp_path):
    """Any checkpoint trained in PyTorch (the official .pth of every size, or a run of ours) is
    not rescaled; its BatchNorms take the training images' statistics and its output is kept."""
    from tests.train_subset import make_subset, tiny_config
    from yoloxkit.engine.builder import build_components
    from yoloxkit.engine.plan import plan_run

    data = make_subset(coco_mini, tmp_path / "data", 4, splits=("train2017", "val2017"))
    torch.manual_seed(0)
    trained = build_network("yolox-nano", num_classes=80).eval()
    with torch.no_grad():  # statistics of its own, as a trained checkpoint has
        recalibrate_batchnorm(trained, [_images(2, 5, 128)])
    path = tmp_path / "trained.pth"
    torch.save({"model": trained.state_dict(), "source": "a yoloxkit run"}, path)
    lines: list[str] = []
    cfg = tiny_config(data, tmp_path / "run", weights=str(path), workers=0, channels_last=False)
    parts = build_components(plan_run(cfg), lines.append)
    model = parts.model
    assert not any("rescaled" in line for line in lines)
    assert any("BatchNorm layers took the training images' statistics" in line for line in lines)
    assert any("the first 1 backbone stage(s) frozen" in line for line in lines)
    conv = "backbone.backbone.dark3.0.dconv.conv.weight"
    assert torch.equal(model.state_dict()[conv], trained.state_dict()[conv])
    bn = "backbone.backbone.dark3.0.dconv.bn.running_mean"
    assert not torch.equal(model.state_dict()[bn], trained.state_dict()[bn])
    images = _images(2, 6, 128)
    model.eval()
    with torch.no_grad():
        ours, theirs = _raw_outputs(model, images), _raw_outputs(trained, images)
    # the 80 COCO rows map by name onto the subset's 80 classes: the same function
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)
