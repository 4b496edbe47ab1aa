"""Filling a training configuration's defaults: every ``None`` that means "the recipe's value
for this model, recipe, optimiser and run length" becomes that value, once per run
(:meth:`yoloxkit.engine.config.TrainConfig.resolved` calls :func:`fill_defaults`). The values
themselves live in :mod:`.recipes`; this module only decides which applies."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..data.augment import AugmentConfig
from ..models import get_spec
from .loader_workers import default_workers
from .recipes import (
    ADAMW_LR_SCALE,
    FINETUNE_LR_SCALE,
    FINETUNE_SIZE_STEPS,
    LR_PER_IMAGE,
    OFFICIAL_EPOCHS,
    OFFICIAL_PRESET,
    OFFICIAL_SIZE_STEPS,
    PSS_BRANCH_EPOCHS,
    PSS_LR_SCALE,
    SCRATCH,
    WEIGHT_DECAY,
    preset_value,
    training_recipe,
)

__all__ = ["fill_defaults", "EPOCH_FRACTION_FIELDS"]

# augmentation options whose None means the official value of AugmentConfig
_AUGMENT_FIELDS = ("mixup_scale", "hsv_prob", "flip_prob", "degrees", "translate", "shear")
#: the preset fields whose value depends on the run's length (the fine-tune's fractions of it)
EPOCH_FRACTION_FIELDS = ("warmup_epochs", "no_aug_epochs")


def fill_defaults(config: Any) -> Any:
    """A copy of the :class:`~yoloxkit.engine.config.TrainConfig` ``config`` with every default filled."""
    spec = get_spec(config.model)
    recipe = training_recipe(spec.name)
    cfg = dataclasses.replace(config, model=spec.name)
    if cfg.weights is None and not spec.weights_url:
        cfg.weights = SCRATCH  # a model without released weights (the roadmap rows) starts from random ones
    if cfg.recipe is None:
        cfg.recipe = "official" if cfg.from_scratch else "finetune"
    if cfg.epochs is None:
        cfg.epochs = PSS_BRANCH_EPOCHS if cfg.freeze_detector else OFFICIAL_EPOCHS
    if cfg.lr is not None and cfg.shifted_lr_scale is None:
        cfg.shifted_lr_scale = 1.0  # the user's lr is the lr
    if cfg.freeze_detector and cfg.recalibrate_bn is None:
        cfg.recalibrate_bn = False  # the detector is frozen; the fresh branch has no statistics to keep
    for name in OFFICIAL_PRESET:
        if getattr(cfg, name) is None:
            setattr(cfg, name, preset_value(cfg.recipe, name, cfg.epochs))
    derived = {
        "size": spec.input_size, "mosaic_prob": recipe.mosaic_prob,
        "mosaic_scale": tuple(recipe.mosaic_scale), "mixup_prob": recipe.mixup_prob,
        # --freeze-detector: the PSS branch learns from the detector's own outputs on plain images
        # (docs/end_to_end.md: NMS-free AP 23.0 with Mosaic/MixUp, 30.2 without)
        "mosaic": recipe.mosaic and not cfg.freeze_detector,
        "mixup": recipe.enable_mixup and not cfg.freeze_detector,
        "optimizer": "sgd", "min_delta": 0.0,
        **{name: getattr(AugmentConfig, name) for name in _AUGMENT_FIELDS},
    }
    for name, value in derived.items():
        if getattr(cfg, name) is None:
            setattr(cfg, name, value)
    if cfg.size_range is None:
        cfg.size_range = _size_range(cfg, recipe.train_size_range)
    if cfg.lr is None:
        scale = PSS_LR_SCALE if cfg.freeze_detector else FINETUNE_LR_SCALE if cfg.recipe == "finetune" else 1.0
        cfg.lr = LR_PER_IMAGE * cfg.batch_size * scale * (ADAMW_LR_SCALE if cfg.optimizer == "adamw" else 1.0)
    if cfg.weight_decay is None:
        cfg.weight_decay = WEIGHT_DECAY[cfg.optimizer]
    if cfg.ema is None:
        # The frozen detector needs no average, and averaging the fresh PSS branch over its last
        # few hundred steps costs it 0.5 AP (docs/end_to_end.md).
        cfg.ema = not cfg.freeze_detector
    if cfg.device is None:
        cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.workers is None:
        cfg.workers = default_workers(cfg.device)
    return cfg


def _size_range(cfg: Any, official_range: tuple[int, int] | None) -> tuple[int, int]:
    # --freeze-detector keeps the official range its documented recipe was measured with (coco-mini,
    # 60 epochs: NMS-free AP 31.0 at 256-576; 30.7 at the fine-tune's 352-480)
    official = cfg.recipe == "official" or cfg.freeze_detector
    if cfg.multiscale_range is None and official and official_range is not None:
        return tuple(official_range)  # official nano/tiny: 320..640 at any size
    steps = cfg.multiscale_range
    if steps is None:
        steps = OFFICIAL_SIZE_STEPS if official else FINETUNE_SIZE_STEPS
    return (max(32, cfg.size - 32 * steps), cfg.size + 32 * steps)
