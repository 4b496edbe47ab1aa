"""Typed training configuration with the official YOLOX defaults for each model size.

Precedence: the recipe's defaults for ``model`` < YAML file (``--config``) < command-line flags.
The per-size part of the official recipe (multi-scale range, Mosaic and MixUp settings) is
:class:`TrainingRecipe`. A run uses one of two recipes (:data:`RECIPE_NAMES`): ``"official"``,
the official YOLOX recipe exactly, or ``"finetune"``, the official recipe with the changes of
:data:`FINETUNE_PRESET` for starting from pretrained weights (the default whenever the run starts
from pretrained weights). :meth:`TrainConfig.resolved` fills every default once, and the resolved
config hands the data pipeline its :meth:`~TrainConfig.augment_config` and the loop its
:attr:`~TrainConfig.no_aug_start_epoch`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml

from ..data.augment import AugmentConfig
from ..errors import YoloxkitError
from ..losses import NORMALIZERS, PSS_TARGETS
from ..models import get_spec

__all__ = [
    "TrainConfig",
    "ConfigError",
    "TrainingRecipe",
    "training_recipe",
    "default_config",
    "load_config",
    "update_config",
    "LR_PER_IMAGE",
    "RECIPE_NAMES",
    "OFFICIAL_PRESET",
    "FINETUNE_PRESET",
    "SCRATCH",
    "is_scratch",
]

LR_PER_IMAGE = 0.01 / 64  # the official "0.01 per 64 images"
#: --freeze-detector: the fresh PSS branch alone learns at 20x the official rate. On coco-mini
#: (nano-e2e, 60 epochs, batch 16) 0.0025 barely moved its loss; 0.05 and 0.2 reached the same AP.
PSS_LR_SCALE = 20.0


class ConfigError(YoloxkitError, ValueError):
    """A training configuration value or file that is invalid."""


@dataclass(frozen=True)
class TrainingRecipe:
    """The official training settings that depend on the model size."""

    train_size_range: tuple[int, int] | None = None  # fixed multi-scale range; None: size +- 5*32
    mosaic_prob: float = 1.0
    mosaic_scale: tuple[float, float] = (0.1, 2.0)
    mixup_prob: float = 1.0
    enable_mixup: bool = True

    def augment(self, **overrides: Any) -> AugmentConfig:
        """This recipe's :class:`AugmentConfig` (official values elsewhere), ``overrides`` applied."""
        base = AugmentConfig(mosaic_prob=self.mosaic_prob, mosaic_scale=tuple(self.mosaic_scale),
                             enable_mixup=self.enable_mixup, mixup_prob=self.mixup_prob)
        return dataclasses.replace(base, **overrides)


RECIPE_NAMES = ("official", "finetune")
#: ``--weights none`` (or ``--from-scratch``): random initial weights
SCRATCH = "none"

#: The schedule-and-loss settings of each recipe, for the fields whose default is ``None``.
#: ``warmup_epochs`` and ``no_aug_epochs`` of the fine-tuning preset are fractions of the run
#: (at least one epoch each; see :func:`_preset_value`).
OFFICIAL_PRESET: dict[str, Any] = {
    "warmup_epochs": 5,
    "no_aug_epochs": 15,
    "eval_interval": 10,
    "ema_decay": 0.9998,
    "ema_ramp": 2000.0,
    "loss_normalizer": "batch",
    "freeze_trunk": False,
    "fit_new_classes": False,
    "eval_start": False,
}
FINETUNE_PRESET: dict[str, Any] = {
    "warmup_epochs": 0.1,  # of the run, at least 1 epoch
    "no_aug_epochs": 0.2,  # of the run, at least 1 epoch
    "eval_interval": 1,
    "ema_decay": 0.98,
    "ema_ramp": 0.0,  # no ramp: the average starts at the pretrained weights
    "loss_normalizer": "running",
    "freeze_trunk": True,
    "fit_new_classes": True,
    "eval_start": True,
}
_FRACTION_FIELDS = ("warmup_epochs", "no_aug_epochs")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """Data-loader workers per process: 4, or fewer on a machine with fewer CPUs (PyTorch warns
    when the workers outnumber them)."""
    return min(4, available_cpus())


def is_scratch(weights: str | None) -> bool:
    """Whether ``weights`` asks for random initial weights (``"none"``, any case)."""
    return isinstance(weights, str) and weights.strip().lower() in (SCRATCH, "scratch")


def _preset_value(recipe: str, name: str, epochs: int) -> Any:
    value = (FINETUNE_PRESET if recipe == "finetune" else OFFICIAL_PRESET)[name]
    if recipe == "finetune" and name in _FRACTION_FIELDS:
        whole = max(1, int(round(value * epochs)))
        return whole if name == "no_aug_epochs" else float(whole)
    return value


_SMALL_MODEL = TrainingRecipe(train_size_range=(320, 640), mosaic_scale=(0.5, 1.5), enable_mixup=False)
RECIPES: dict[str, TrainingRecipe] = {
    "yolox-nano": dataclasses.replace(_SMALL_MODEL, mosaic_prob=0.5),
    "yolox-tiny": _SMALL_MODEL,
}


def training_recipe(model: str) -> TrainingRecipe:
    """The official recipe of model ``model`` (any name :func:`yoloxkit.models.get_spec` accepts):
    nano and tiny train at 320..640 with Mosaic scale (0.5, 1.5) and no MixUp, nano with Mosaic
    p=0.5; the other sizes use the defaults of :class:`TrainingRecipe`."""
    return RECIPES.get(get_spec(model).name, TrainingRecipe())


@dataclass
class TrainConfig:
    """Every knob of a training run. ``None`` for a field derived from the model means
    "use the official value for this model size"."""

    data: str = ""
    model: str = "yolox-s"
    train_split: str | None = None
    val_split: str | None = None
    weights: str | None = None  # None: the model's COCO weights; "none": random initial weights
    recipe: str | None = None  # "official" | "finetune"; None: finetune from pretrained weights, else official
    rescale_convs: bool | None = None  # None: when the weights were un-folded from an ONNX export
    names: list[str] | None = None
    out: str | None = None  # None: the first free runs/train, runs/train2, ... (engine/run_dir.py)
    resume: bool = False
    exist_ok: bool = False  # start over in an --out that holds a run (its files are replaced)
    device: str | None = None  # None: cuda if available, else cpu
    seed: int = 0
    # schedule
    epochs: int = 300
    batch_size: int = 64  # total over all processes
    lr: float | None = None  # None: LR_PER_IMAGE * batch_size
    min_lr_ratio: float = 0.05
    warmup_epochs: float | None = None  # None: the recipe's (official 5)
    warmup_lr: float = 0.0
    no_aug_epochs: int | None = None  # None: the recipe's (official 15)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    ema: bool | None = None  # None: on, except with freeze_detector (a branch trained from scratch)
    ema_decay: float | None = None  # None: the recipe's (official 0.9998, finetune 0.98)
    ema_ramp: float | None = None  # None: the recipe's (official 2000 iterations; finetune 0: none)
    amp: bool = False
    sync_bn: bool = False
    # fine-tuning (None: the recipe's; see FINETUNE_PRESET)
    loss_normalizer: str | None = None  # "batch" (official) | "running"
    freeze_trunk: bool | None = None  # backbone and neck frozen (BatchNorm in eval mode)
    fit_new_classes: bool | None = None  # fit new class rows on the training labels before training
    eval_start: bool | None = None  # evaluate the starting weights (epoch 0) and keep them as best.pth
    freeze_detector: bool = False  # end-to-end models: train only the PSS branch
    pss_targets: str = "detector"  # end-to-end models: "detector" (its own NMS survivors) | "gt" (one-to-one)
    channels_last: bool = True  # NHWC activations: ~1.5x faster iterations on CPU (docs/BENCHMARKS.md)
    # input size and multi-scale
    size: int | None = None  # None: the model's input size (nano/tiny 416, others 640)
    multiscale: bool = True
    multiscale_range: int = 5  # size +- range*32 (nano/tiny: the recipe's 320..640)
    size_range: tuple[int, int] | None = None  # explicit (min, max); None: from the recipe / range
    # augmentation (None: from the model's TrainingRecipe)
    no_aug: bool = False
    mosaic: bool = True
    mixup: bool | None = None
    mosaic_prob: float | None = None
    mosaic_scale: tuple[float, float] | None = None
    # the official augmentation values, defined once in yoloxkit.data.augment.AugmentConfig
    mixup_prob: float = AugmentConfig.mixup_prob
    mixup_scale: tuple[float, float] = AugmentConfig.mixup_scale
    hsv_prob: float = AugmentConfig.hsv_prob
    flip_prob: float = AugmentConfig.flip_prob
    degrees: float = AugmentConfig.degrees
    translate: float = AugmentConfig.translate
    shear: float = AugmentConfig.shear
    # data loading
    workers: int | None = None  # None: min(4, the CPUs this process may use)
    cache_ram: bool = False
    max_iters_per_epoch: int | None = None  # for tests and quick runs
    # evaluation and feedback
    eval_interval: int | None = None  # None: the recipe's (official 10, finetune 1); 0: never evaluate
    eval_conf: float = 0.01
    eval_nms: float = 0.65
    visualize_assign: bool = False
    plots: bool = True
    tensorboard: bool = True
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def no_aug_start_epoch(self) -> int:
        """0-based epoch from which Mosaic/MixUp are off and the L1 loss is on: the one boundary
        the loop, the evaluation and the dataset use. As in the official trainer (which switches
        when ``epoch + 1 == max_epoch - no_aug_epochs``), that is ``no_aug_epochs + 1`` epochs
        before the end, and the first epoch when the run is not longer than that."""
        return max(0, self.epochs - self.no_aug_epochs - 1)

    @property
    def from_scratch(self) -> bool:
        """Whether the run starts from random weights (``weights="none"``)."""
        return is_scratch(self.weights)

    def resolved(self) -> "TrainConfig":
        """A copy with every model-dependent ``None`` filled with the official value."""
        spec = get_spec(self.model)
        recipe = training_recipe(spec.name)
        cfg = dataclasses.replace(self, model=spec.name)
        if cfg.recipe is None:
            cfg.recipe = "official" if cfg.from_scratch else "finetune"
        if cfg.recipe not in RECIPE_NAMES:
            raise ConfigError(f"--recipe must be one of {', '.join(RECIPE_NAMES)}, got {cfg.recipe!r}")
        for name in OFFICIAL_PRESET:
            if getattr(cfg, name) is None:
                setattr(cfg, name, _preset_value(cfg.recipe, name, cfg.epochs))
        if cfg.size is None:
            cfg.size = spec.input_size
        if cfg.mixup is None:
            cfg.mixup = recipe.enable_mixup
        if cfg.mosaic_prob is None:
            cfg.mosaic_prob = recipe.mosaic_prob
        if cfg.mosaic_scale is None:
            cfg.mosaic_scale = tuple(recipe.mosaic_scale)
        if cfg.mixup_prob is None:
            cfg.mixup_prob = recipe.mixup_prob
        if cfg.mosaic is None:
            cfg.mosaic = True
        for name in _AUGMENT_FIELDS:
            if getattr(cfg, name) is None:
                setattr(cfg, name, getattr(AugmentConfig, name))
        if cfg.size_range is None:
            if recipe.train_size_range is not None:  # official nano/tiny: 320..640 at any size
                cfg.size_range = tuple(recipe.train_size_range)
            else:
                cfg.size_range = (
                    max(32, cfg.size - 32 * cfg.multiscale_range),
                    cfg.size + 32 * cfg.multiscale_range,
                )
        if cfg.lr is None:
            cfg.lr = LR_PER_IMAGE * cfg.batch_size * (PSS_LR_SCALE if cfg.freeze_detector else 1.0)
        if cfg.ema is None:
            # The frozen detector needs no average, and averaging the fresh PSS branch over its last
            # few hundred steps costs it 0.5 AP (docs/end_to_end.md).
            cfg.ema = not cfg.freeze_detector
        if cfg.device is None:
            cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
        if cfg.workers is None:
            cfg.workers = default_workers()
        cfg.validate()
        return cfg

    def augment_config(self) -> AugmentConfig:
        """What the training dataset does to each sample; call it on a :meth:`resolved` config."""
        if self.no_aug:
            return AugmentConfig.off()
        return AugmentConfig(
            mosaic_prob=self.mosaic_prob if self.mosaic else 0.0,
            mosaic_scale=tuple(self.mosaic_scale),
            enable_mixup=bool(self.mixup),
            mixup_prob=self.mixup_prob,
            mixup_scale=tuple(self.mixup_scale),
            degrees=self.degrees,
            translate=self.translate,
            shear=self.shear,
            hsv_prob=self.hsv_prob,
            flip_prob=self.flip_prob,
        )

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid value."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size}
        for name, value in positive.items():
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.size is not None and (self.size < 32 or self.size % 32):
            raise ConfigError(f"--size must be a positive multiple of 32, got {self.size}")
        for name in ("no_aug_epochs", "warmup_epochs", "workers", "eval_interval", "ema_ramp"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.max_iters_per_epoch is not None and self.max_iters_per_epoch < 1:
            raise ConfigError(f"--max-iters-per-epoch must be >= 1, got {self.max_iters_per_epoch}")
        if self.freeze_detector and not get_spec(self.model).end_to_end:
            raise ConfigError(
                f"--freeze-detector trains only the PSS branch of an end-to-end model; {self.model} has none"
                f" (use {get_spec(self.model).name}-e2e)"
            )
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")
        for name in ("mosaic_prob", "mixup_prob", "hsv_prob", "flip_prob", "eval_conf", "eval_nms", "min_lr_ratio", "ema_decay"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if self.pss_targets not in PSS_TARGETS:
            raise ConfigError(f"--pss-targets must be one of {', '.join(PSS_TARGETS)}, got {self.pss_targets!r}")
        if self.loss_normalizer is not None and self.loss_normalizer not in NORMALIZERS:
            raise ConfigError(f"--loss-normalizer must be one of {', '.join(NORMALIZERS)}, got {self.loss_normalizer!r}")
        if self.device is not None and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"--device must be cpu or cuda[:N], got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


_FIELDS = {f.name: f for f in fields(TrainConfig)}
# augmentation options whose None means the official value of AugmentConfig
_AUGMENT_FIELDS = ("mixup_scale", "hsv_prob", "flip_prob", "degrees", "translate", "shear")
_TUPLE_FIELDS = {"size_range", "mosaic_scale", "mixup_scale"}


def _coerce(name: str, value: Any, source: str) -> Any:
    if name in _TUPLE_FIELDS and value is not None:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(f"{source}: {name} must be a pair [low, high], got {value!r}")
        return tuple(value)
    return value


def default_config(model: str = "yolox-s", **overrides: Any) -> TrainConfig:
    """The official recipe for ``model`` with ``overrides`` applied (not yet resolved)."""
    return update_config(TrainConfig(model=model), overrides, "arguments")


def update_config(cfg: TrainConfig, values: dict[str, Any], source: str) -> TrainConfig:
    """Return ``cfg`` with ``values`` applied; unknown keys raise :class:`ConfigError`."""
    changes = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in _FIELDS:
            raise ConfigError(f"{source}: unknown training option {key!r}")
        changes[name] = _coerce(name, value, source)
    return dataclasses.replace(cfg, **changes)


def load_config(path: str | os.PathLike, base: TrainConfig | None = None) -> TrainConfig:
    """Apply the mapping in YAML file ``path`` on top of ``base`` (default: the defaults)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse config file {path}: {str(exc).splitlines()[0]}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return update_config(base or TrainConfig(), values, str(path))
