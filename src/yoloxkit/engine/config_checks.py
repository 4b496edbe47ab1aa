"""Checking a training configuration: :class:`ConfigError` and the checks behind
:meth:`yoloxkit.engine.config.TrainConfig.validate` (each value in its range, each choice in its
registry), kept apart so that the config module holds the options themselves."""

from __future__ import annotations

from typing import Any

from ..errors import YoloxkitError
from ..models import get_spec
from .options import cli_fields

__all__ = ["ConfigError", "check_choices", "validate_config"]


class ConfigError(YoloxkitError, ValueError):
    """A training configuration value or file that is invalid."""


def check_choices(cfg: Any) -> None:
    """Raise :class:`ConfigError` for a value outside its field's ``choices`` (the registries)."""
    for f, opt in cli_fields(type(cfg)):
        value = getattr(cfg, f.name)
        if opt.choices is not None and value is not None and value not in opt.choices:
            raise ConfigError(f"{opt.flag_for(f.name)} must be one of {', '.join(opt.choices)}, got {value!r}")


def validate_config(cfg: Any) -> None:
    """Raise :class:`ConfigError` naming the first invalid value."""
    check_choices(cfg)
    for name, value in {"epochs": cfg.epochs, "batch_size": cfg.batch_size}.items():
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if cfg.size is not None and (cfg.size < 32 or cfg.size % 32):
        raise ConfigError(f"--size must be a positive multiple of 32, got {cfg.size}")
    for name in ("no_aug_epochs", "warmup_epochs", "workers", "eval_interval", "ema_ramp", "frozen_stages", "trunk_lr_scale",
                 "multiscale_range", "shifted_lr_scale"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if cfg.max_iters_per_epoch is not None and cfg.max_iters_per_epoch < 1:
        raise ConfigError(f"--max-iters-per-epoch must be >= 1, got {cfg.max_iters_per_epoch}")
    if cfg.patience is not None and cfg.patience < 1:
        raise ConfigError(f"--patience must be >= 1 evaluations (leave it out for no early stopping), got {cfg.patience}")
    for name in ("min_delta", "weight_decay"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if cfg.time is not None and not cfg.time > 0:
        raise ConfigError(f"--time must be a positive number of hours (0.5: 30 minutes), got {cfg.time}")
    if cfg.freeze_detector and not get_spec(cfg.model).end_to_end:
        raise ConfigError(
            f"--freeze-detector trains only the PSS branch of an end-to-end model; {cfg.model} has none"
            f" (use {get_spec(cfg.model).name}-e2e)"
        )
    if cfg.lr is not None and cfg.lr <= 0:
        raise ConfigError(f"--lr must be > 0, got {cfg.lr}")
    for name in ("mosaic_prob", "mixup_prob", "hsv_prob", "flip_prob", "eval_conf", "eval_nms", "min_lr_ratio", "ema_decay"):
        value = getattr(cfg, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {value}")
    if cfg.device is not None and not (cfg.device == "cpu" or cfg.device.startswith("cuda")):
        raise ConfigError(f"--device must be cpu or cuda[:N], got {cfg.device!r}")
