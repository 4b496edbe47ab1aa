"""Unit tests of the training engine's pure parts, compared with the reference where it has one."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from torch import nn

from yoloxkit.engine.checkpoint import capture_rng_state, restore_rng_state
from yoloxkit.engine.config import ConfigError, TrainConfig, default_config, load_config
from yoloxkit.engine.ema import ModelEMA
from yoloxkit.engine.multiscale import resize_batch, size_for_iteration
from yoloxkit.engine.optim import build_optimizer, parameter_groups
from yoloxkit.engine.schedule import WarmupCosineSchedule
from yoloxkit.models import build_network

REFERENCE_CONFIGS = {
    "yolox-nano": "YoloxNano",
    "yolox-tiny": "YoloxTiny",
    "yolox-s": "YoloxS",
    "yolox-m": "YoloxM",
    "yolox-l": "YoloxL",
    "yolox-x": "YoloxX",
}


@pytest.mark.parametrize("name", sorted(REFERENCE_CONFIGS))
def test_defaults_match_reference_recipe(name):
    import yolox.config

    ref = getattr(yolox.config, REFERENCE_CONFIGS[name])()
    cfg = default_config(name, weights="none").resolved()
    assert cfg.recipe == "official"  # random initial weights: the official recipe
    assert cfg.loss_normalizer == "batch" and not cfg.freeze_trunk and not cfg.fit_new_classes
    assert cfg.epochs == ref.max_epoch
    assert cfg.warmup_epochs == ref.warmup_epochs
    assert cfg.no_aug_epochs == ref.no_aug_epochs
    assert cfg.min_lr_ratio == ref.min_lr_ratio
    assert cfg.lr == pytest.approx(ref.basic_lr_per_img * cfg.batch_size)
    assert cfg.weight_decay == ref.weight_decay and cfg.momentum == ref.momentum
    assert cfg.warmup_lr == ref.warmup_lr
    assert cfg.eval_interval == ref.eval_interval
    assert (cfg.size, cfg.size) == tuple(ref.input_size)
    assert cfg.mosaic_prob == ref.mosaic_prob and cfg.mixup == ref.enable_mixup
    assert tuple(cfg.mosaic_scale) == tuple(ref.mosaic_scale)
    assert tuple(cfg.mixup_scale) == tuple(ref.mixup_scale)
    assert (cfg.degrees, cfg.translate, cfg.shear) == (ref.degrees, ref.translate, ref.shear)
    assert (cfg.hsv_prob, cfg.flip_prob) == (ref.hsv_prob, ref.flip_prob)
    assert (cfg.eval_conf, cfg.eval_nms) == (ref.test_conf, ref.nmsthre)
    if ref.random_size is not None:
        assert tuple(cfg.size_range) == (32 * ref.random_size[0], 32 * ref.random_size[1])
    else:
        span = 32 * ref.multiscale_range
        assert tuple(cfg.size_range) == (cfg.size - span, cfg.size + span)


def test_resolved_config_hands_out_the_recipe_augmentation_and_no_aug_boundary():
    from yoloxkit.data.augment import AugmentConfig
    from yoloxkit.engine.config import training_recipe

    nano = default_config("yolox-nano", epochs=20, no_aug_epochs=5).resolved()
    assert nano.no_aug_start_epoch == 14  # the official trainer: epoch + 1 == max_epoch - no_aug_epochs
    augment = nano.augment_config()
    assert (augment.mosaic_prob, augment.mosaic_scale, augment.enable_mixup) == (0.5, (0.5, 1.5), False)
    assert augment == training_recipe("nano").augment()
    assert training_recipe("yolox-x") == training_recipe("darknet53")  # the defaults
    assert default_config("yolox-s", mosaic=False).resolved().augment_config().mosaic_prob == 0.0
    assert default_config("yolox-s", no_aug=True).resolved().augment_config() == AugmentConfig.off()


@pytest.mark.parametrize("epochs,no_aug", [(300, 15), (20, 5), (16, 15), (15, 15), (10, 15), (1, 0), (3, 0)])
def test_no_aug_boundary_is_the_official_trainers(epochs, no_aug):
    # The official Trainer closes Mosaic (and turns L1 on) at the start of the 0-based epoch e
    # with e + 1 == max_epoch - no_aug_epochs, or from the start when 0 >= max_epoch - no_aug_epochs.
    closed = [e for e in range(epochs) if e + 1 == epochs - no_aug or 0 >= epochs - no_aug]
    cfg = default_config("yolox-s", weights="none", epochs=epochs, no_aug_epochs=no_aug).resolved()
    assert cfg.no_aug_start_epoch == closed[0]


def test_nano_and_tiny_multiscale_is_320_to_640_at_any_size():
    for name in ("yolox-nano", "yolox-tiny"):
        for size in (320, 416, 640):
            assert default_config(name, size=size, weights="none").resolved().size_range == (320, 640)
    assert default_config("yolox-s", size=320, weights="none").resolved().size_range == (160, 480)


def test_finetune_multiscale_is_centred_on_the_evaluation_size():
    from yoloxkit.engine.recipes import FINETUNE_SIZE_STEPS

    span = 32 * FINETUNE_SIZE_STEPS
    for name, size in (("yolox-nano", 416), ("yolox-tiny", 320), ("yolox-s", 640)):
        assert default_config(name, size=size).resolved().size_range == (size - span, size + span)
    # an explicit range wins over both recipes; nano's official 320..640 is the official recipe's only
    assert default_config("yolox-nano", multiscale_range=1).resolved().size_range == (384, 448)
    assert default_config("yolox-nano", weights="none", multiscale_range=1).resolved().size_range == (384, 448)
    assert default_config("yolox-nano", size=64, multiscale_range=3).resolved().size_range == (32, 160)
    # --freeze-detector (the PSS branch alone) keeps the official range of its documented recipe
    e2e = default_config("yolox-nano-e2e", freeze_detector=True).resolved()
    assert e2e.recipe == "finetune" and e2e.size_range == (416 - 160, 416 + 160)
    with pytest.raises(ConfigError, match="--multiscale-range"):
        default_config("yolox-nano", multiscale_range=-1).resolved()


def test_pretrained_start_uses_the_finetune_preset_scaled_to_the_run():
    cfg = default_config("yolox-nano", epochs=10).resolved()
    assert cfg.recipe == "finetune" and cfg.weights is None
    assert (cfg.warmup_epochs, cfg.no_aug_epochs, cfg.eval_interval) == (1.0, 2, 1)
    assert not cfg.freeze_trunk and cfg.frozen_stages == 1 and cfg.recalibrate_bn
    assert cfg.fit_new_classes and cfg.eval_start and cfg.loss_normalizer == "running"
    assert (cfg.ema_decay, cfg.ema_ramp) == (0.98, 0.0)
    assert cfg.l1_from_start is None and cfg.shifted_lr_scale == 1.5  # engine/domain_shift.py
    assert cfg.no_aug_start_epoch == 7
    assert default_config("yolox-nano", epochs=100).resolved().warmup_epochs == 10.0
    # every preset value gives way to an explicit one, and --recipe official restores them all
    mixed = default_config("yolox-nano", epochs=10, freeze_trunk=True, warmup_epochs=3).resolved()
    assert (mixed.freeze_trunk, mixed.warmup_epochs, mixed.fit_new_classes) == (True, 3, True)
    official = default_config("yolox-nano", epochs=10, recipe="official").resolved()
    assert (official.warmup_epochs, official.no_aug_epochs, official.freeze_trunk) == (5, 15, False)
    assert (official.frozen_stages, official.recalibrate_bn, official.trunk_lr_scale) == (0, False, 1.0)
    assert (official.ema_decay, official.ema_ramp, official.eval_interval) == (0.9998, 2000.0, 10)
    assert not official.l1_from_start and official.shifted_lr_scale == 1.0
    from yoloxkit.engine.recipes import FINETUNE_LR_SCALE

    assert official.lr == pytest.approx(0.01 * official.batch_size / 64)  # the official rate, untouched
    finetune = default_config("yolox-nano", batch_size=16).resolved()
    assert finetune.lr == pytest.approx(FINETUNE_LR_SCALE * 0.01 * 16 / 64) and FINETUNE_LR_SCALE > 1
    assert default_config("yolox-nano", batch_size=16, lr=0.001).resolved().lr == 0.001
    with pytest.raises(ConfigError, match="--recipe"):
        default_config("yolox-nano", recipe="fast").resolved()


def test_yaml_then_flags_override(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("model: yolox-nano\nepochs: 7\nno-aug-epochs: 2\nmosaic_scale: [0.6, 1.4]\n")
    cfg = load_config(path)
    assert (cfg.model, cfg.epochs, cfg.no_aug_epochs, cfg.mosaic_scale) == ("yolox-nano", 7, 2, (0.6, 1.4))
    from yoloxkit.engine.config import update_config

    cfg = update_config(cfg, {"epochs": 3}, "command line").resolved()
    assert cfg.epochs == 3 and cfg.size == 416 and cfg.lr == pytest.approx(0.02)  # finetune: 2x 0.01 at batch 64


def test_config_errors_name_the_option(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epoch: 3\n")
    with pytest.raises(ConfigError, match="epoch"):
        load_config(path)
    with pytest.raises(ConfigError, match="--size"):
        TrainConfig(model="yolox-s", size=300).resolved()
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_schedule_matches_reference():
    from yolox.utils import LRScheduler

    ours = WarmupCosineSchedule(base_lr=0.02, iters_per_epoch=7, epochs=40, warmup_epochs=5, no_aug_epochs=15)
    ref = LRScheduler("yoloxwarmcos", 0.02, 7, 40, warmup_epochs=5, warmup_lr_start=0, no_aug_epochs=15, min_lr_ratio=0.05)
    for it in range(0, 7 * 40 + 1):
        assert ours.lr(it) == pytest.approx(ref.update_lr(it), rel=1e-12, abs=1e-15), it
    assert ours.lr(0) == 0.0
    assert ours.lr(35) == pytest.approx(0.02)
    assert ours.lr(7 * 25) == pytest.approx(0.001) and ours.lr(7 * 40 - 1) == pytest.approx(0.001)


def test_optimizer_groups_match_reference():
    from yolox.config import YoloxNano

    from tests.parity.reference import build_reference

    ours = build_network("yolox-nano", 80)
    ref_cfg = YoloxNano()
    ref_cfg.model = build_reference("yolox-nano", 80)
    ref_opt = ref_cfg.get_optimizer(64)
    ref_names = {id(p): n for n, p in ref_cfg.model.named_parameters()}
    own_names = {id(p): n for n, p in ours.named_parameters()}
    opt = build_optimizer(ours, 0.01)
    assert len(opt.param_groups) == len(ref_opt.param_groups) == 3
    for group, ref_group in zip(opt.param_groups, ref_opt.param_groups):
        assert sorted(own_names[id(p)] for p in group["params"]) == sorted(ref_names[id(p)] for p in ref_group["params"])
        assert group["weight_decay"] == ref_group.get("weight_decay", 0.0)
        assert group["nesterov"] and group["momentum"] == 0.9
    norm, weights, biases = parameter_groups(ours)
    assert len(norm) + len(weights) + len(biases) == len(list(ours.parameters()))
    assert all(p.dim() == 1 for p in norm + biases) and all(p.dim() == 4 for p in weights)


def test_ema_matches_reference():
    from yolox.utils import ModelEMA as RefEMA

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ours, ref = ModelEMA(model, 0.9998), RefEMA(model, 0.9998)
    for _ in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()(torch.randn(2, 3, 8, 8))  # moves BN statistics and num_batches_tracked
        ours.update(model)
        ref.update(model)
    for (k, a), b in zip(ours.module.state_dict().items(), ref.ema.state_dict().values()):
        if a.dtype.is_floating_point:  # the reference leaves integer buffers at their initial value
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=k)
    assert ours.current_decay() == pytest.approx(0.9998 * (1 - np.exp(-5 / 2000)))
    assert not torch.equal(ours.module[0].weight, model[0].weight)


def test_rng_state_roundtrip_weights_only():
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    buf = io.BytesIO()
    torch.save(capture_rng_state(), buf)
    first = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    buf.seek(0)
    restore_rng_state(torch.load(buf, weights_only=True))
    assert (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()) == first


def test_multiscale_sizes_and_resize():
    sizes = [size_for_iteration(i, 416, (320, 640), seed=5) for i in range(0, 400)]
    assert sizes[:10] == [416] * 10
    assert all(320 <= s <= 640 and s % 32 == 0 for s in sizes)
    assert len(set(sizes)) > 3
    assert all(sizes[i] == sizes[i - i % 10] for i in range(10, 400))  # constant within 10 iterations
    assert sizes == [size_for_iteration(i, 416, (320, 640), seed=5) for i in range(0, 400)]
    assert size_for_iteration(55, 416, (320, 640), 5, enabled=False) == 416
    images = torch.rand(2, 3, 64, 64)
    targets = torch.tensor([[[1, 32, 16, 8, 4]], [[0, 0, 0, 0, 0]]], dtype=torch.float32)
    out, t = resize_batch(images, targets, 96)
    assert out.shape == (2, 3, 96, 96)
    torch.testing.assert_close(t[0, 0], torch.tensor([1, 48, 24, 12, 6.0]))
    assert t[1].abs().sum() == 0
