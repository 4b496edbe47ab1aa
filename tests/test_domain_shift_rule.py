"""The fine-tune's domain-shift rule (engine/domain_shift.py): which starts raise the lr and start
the L1 loss early, and which settings keep the recipe."""

from __future__ import annotations

import pytest

from yoloxkit.engine.config import ConfigError, default_config
from yoloxkit.engine.domain_shift import ShiftRule, adapt_to_domain_shift, is_domain_shift, shift_rule, start_ap50_95
from yoloxkit.models import get_spec

NANO_AP = get_spec("yolox-nano").coco_ap


def test_mAP50_95_is_read_from_coco_and_voc_metrics():
    assert start_ap50_95({"AP": 31.2, "AP50": 49.4}) == 31.2
    assert start_ap50_95({"mAP50": 24.1, "mAP50_95": 12.6}) == 12.6
    assert start_ap50_95({"mAP50": 24.1}) is None


def test_a_start_below_the_models_own_coco_ap_is_a_shift():
    assert is_domain_shift(12.6, NANO_AP)  # BCCD's start
    assert not is_domain_shift(31.2, NANO_AP)  # coco-mini's start
    assert not is_domain_shift(NANO_AP, NANO_AP)
    assert not is_domain_shift(0.0, 0.0)  # no published AP (the -e2e variants): never


def test_the_finetune_recipe_raises_the_lr_and_starts_l1_only_for_shifted_data():
    cfg = default_config("yolox-nano", batch_size=16).resolved()
    assert cfg.shifted_lr_scale == 1.5 and cfg.l1_from_start is None  # None: on out of domain
    assert shift_rule(cfg) == ShiftRule(1.5, True, NANO_AP)
    shift = adapt_to_domain_shift(cfg, {"mAP50": 24.1, "mAP50_95": 12.6})
    assert shift.lr == pytest.approx(1.5 * cfg.lr) and shift.lr == pytest.approx(3 * 0.01 * 16 / 64)
    assert shift.l1 is True
    assert "12.6" in shift.line and f"{NANO_AP:g}" in shift.line and "--shifted-lr-scale" in shift.line
    assert adapt_to_domain_shift(cfg, {"AP": 31.2}) is None
    assert adapt_to_domain_shift(cfg, {}) is None


def test_the_official_recipe_changes_nothing():
    cfg = default_config("yolox-nano", batch_size=16, recipe="official").resolved()
    assert adapt_to_domain_shift(cfg, {"mAP50_95": 5.0}) is None


def test_an_explicit_lr_is_kept_and_each_part_can_be_switched_off():
    explicit = default_config("yolox-nano", batch_size=16, lr=0.004).resolved()
    shift = adapt_to_domain_shift(explicit, {"mAP50_95": 5.0})
    assert shift.lr == 0.004 and shift.l1 and "the lr is" not in shift.line
    no_l1 = default_config("yolox-nano", batch_size=16, l1_from_start=False).resolved()
    shift = adapt_to_domain_shift(no_l1, {"mAP50_95": 5.0})
    assert shift.lr == pytest.approx(1.5 * no_l1.lr) and not shift.l1
    neither = default_config("yolox-nano", batch_size=16, l1_from_start=False, shifted_lr_scale=1.0).resolved()
    assert adapt_to_domain_shift(neither, {"mAP50_95": 5.0}) is None


def test_an_explicit_scale_applies_to_an_explicit_lr_and_end_to_end_models_never_shift():
    cfg = default_config("yolox-nano", batch_size=16, lr=0.004, shifted_lr_scale=2.0).resolved()
    assert adapt_to_domain_shift(cfg, {"mAP50_95": 5.0}).lr == pytest.approx(0.008)
    e2e = default_config("yolox-nano-e2e", batch_size=16).resolved()
    assert adapt_to_domain_shift(e2e, {"mAP50_95": 5.0}) is None and shift_rule(e2e) is None
    with pytest.raises(ConfigError, match="--shifted-lr-scale"):
        default_config("yolox-nano", shifted_lr_scale=-1).resolved()
