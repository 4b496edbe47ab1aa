"""Typed training configuration with the official YOLOX defaults for each model size.

Precedence: the recipe's defaults for ``model`` < YAML file (``--config``) < command-line flags.
Each option's default, help text and choices live in its field here (:func:`.options.option`);
the flags of ``yoloxkit train`` are generated from them. The recipes (the per-size official
settings and the fine-tuning preset) are in :mod:`.recipes`. :meth:`TrainConfig.resolved` fills
every default once (:func:`.plan.plan_run` calls it once per run), and the resolved config hands
the data pipeline its :meth:`~TrainConfig.augment_config` and the loop its
:attr:`~TrainConfig.no_aug_start_epoch`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import yaml

from ..data.augment import AugmentConfig
from ..infer.defaults import EVAL_CONF, EVAL_NMS
from ..losses import NORMALIZERS, PSS_TARGETS
from ..models import get_spec
from .config_checks import ConfigError, check_choices, validate_config
from .loader_workers import CPU_INLINE_LOADING_MAX_CPUS, default_workers
from .options import option
from .recipes import (
    FINETUNE_LR_SCALE,
    FINETUNE_PRESET,
    FINETUNE_SIZE_STEPS,
    LR_PER_IMAGE,
    OFFICIAL_EPOCHS,
    OFFICIAL_PRESET,
    OFFICIAL_SIZE_STEPS,
    PSS_BRANCH_EPOCHS,
    PSS_LR_SCALE,
    RECIPE_NAMES,
    SCRATCH,
    TrainingRecipe,
    is_scratch,
    preset_value,
    training_recipe,
)

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
    "OFFICIAL_EPOCHS",
    "PSS_BRANCH_EPOCHS",
    "SCRATCH",
    "is_scratch",
]


_FT = " (default: on in the finetune recipe)"


@dataclass
class TrainConfig:
    """Every knob of a training run. ``None`` for a field derived from the model means
    "use the official value for this model size"."""

    data: str = option("", "dataset directory (COCO, VOC or YOLO-txt layout) or a data YAML")
    model: str = option("yolox-s", "model name (default {default}): yolox-nano, -tiny, -s, -m, -l, -x, -darknet53")
    train_split: str | None = option(None, "training split (exact name or unique prefix; default: the split starting with 'train')")
    val_split: str | None = option(None, "validation split (default: the split starting with 'val')")
    # None: the model's COCO weights; "none": random initial weights
    weights: str | None = option(
        None, "starting weights: a .pth or .onnx file, a zoo name (yolox-s: bundled for nano, the official download"
        " otherwise), or 'none' for random weights (default: the model's COCO weights; any class count: classes map"
        " by name, new class rows are fitted)",
        consts=(("--from-scratch", SCRATCH, "start from random weights (same as --weights none)"),))
    recipe: str | None = option(
        None, "training recipe (default: finetune from pretrained weights, official from --weights none)",
        choices=RECIPE_NAMES)
    rescale_convs: bool | None = option(
        None, "rescale conv kernels whose BatchNorm was folded into them to ordinary norms before fine-tuning"
        " (same function; default: on for weights converted from ONNX, such as the bundled nano weights)", kind="toggle")
    names: list[str] | None = option(None, "class names, for VOC data without a names file", nargs="+")
    out: str | None = option(None, "output folder (default: the first free one of runs/train, runs/train2, ...)")
    resume: bool = option(False, "continue from OUT/last.pth (weights, EMA, optimizer, schedule, RNG); without --out,"
                          " the newest run", kind="switch")
    exist_ok: bool = option(False, "start over in an --out that holds an earlier run (its files are removed first)", kind="switch")
    device: str | None = option(None, "cpu or cuda (default: cuda when available)")
    seed: int = option(0, "random seed (default {default})")
    # schedule
    epochs: int | None = option(
        None, f"number of epochs (default: {OFFICIAL_EPOCHS}, the official budget; {PSS_BRANCH_EPOCHS} with --freeze-detector)")
    batch_size: int = option(64, "total batch size over all processes (default {default})")
    lr: float | None = option(
        None, f"base learning rate (default: official 0.01 * batch / 64; finetune {FINETUNE_LR_SCALE:g}x that)")
    shifted_lr_scale: float | None = option(
        None, "multiply the lr when the starting weights score below the model's COCO AP on the validation split, a domain"
        " shift (default: official {official}, finetune {finetune}; 1 with an explicit --lr)")
    min_lr_ratio: float = option(0.05, "final lr as a fraction of the base lr (default {default})")
    warmup_epochs: float | None = option(None, "quadratic warm-up epochs (default: official {official}, finetune {finetune}, at least 1)")
    warmup_lr: float = 0.0
    no_aug_epochs: int | None = option(
        None, "the lr's flat tail without Mosaic/MixUp, with L1; Mosaic stops one epoch earlier, as in the official"
        " trainer (default: official {official}, finetune {finetune})")
    momentum: float = option(0.9, "SGD momentum (default {default})")
    weight_decay: float = option(5e-4, "weight decay on conv/linear weights (default {default})")
    ema: bool | None = option(None, "EMA of the weights (default on, off with --freeze-detector)", kind="toggle")
    ema_decay: float | None = option(None, "EMA decay (default: official {official}, finetune {finetune})")
    ema_ramp: float | None = option(None, "iterations of the EMA's decay ramp (default: official {official}; finetune {finetune}, no ramp)")
    amp: bool = option(False, "mixed precision on CUDA", kind="switch")
    sync_bn: bool = option(False, "SyncBatchNorm under DDP", kind="switch")
    # fine-tuning (None: the recipe's; see FINETUNE_PRESET)
    l1_from_start: bool | None = option(
        None, "the L1 box loss from the first epoch, not only in the no-aug tail (default: official off; finetune on"
        " when the starting weights score below the model's COCO AP on the validation split)", kind="toggle")
    loss_normalizer: str | None = option(
        None, "divide the losses by the batch's positives (official) or a running mean of them (finetune)", choices=NORMALIZERS)
    freeze_trunk: bool | None = option(None, "freeze backbone and neck, BatchNorm in eval mode" + _FT, kind="toggle")
    fit_new_classes: bool | None = option(
        None, "fit the class rows the weights lack on the training labels before training (default: on in finetune)", kind="toggle")
    eval_start: bool | None = option(
        None, "evaluate the starting weights as epoch 0 and keep them as best.pth until beaten (default: on in finetune)",
        kind="toggle")
    recalibrate_bn: bool | None = option(
        None, "before training, re-estimate the BatchNorm statistics of the layers that train on the training images,"
        " keeping the starting weights' output (default: on in finetune, off with --freeze-detector)", kind="toggle")
    frozen_stages: int | None = option(
        None, "freeze the first N stages of the backbone, 1 being the stem (default: official {official}, finetune {finetune})")
    trunk_lr_scale: float | None = option(
        None, "learning rate of backbone and neck as a fraction of the head's (default: official {official}, finetune {finetune})")
    freeze_detector: bool = option(False, "end-to-end (-e2e) models: train only the PSS branch, the detector frozen", kind="switch")
    pss_targets: str = option(
        "detector", "end-to-end models: the PSS branch learns to keep the anchors the detector's own NMS keeps"
        " (detector, default) or each gt's one-to-one anchor (gt)", choices=PSS_TARGETS)
    channels_last: bool = option(True, "channels-last (NHWC) memory format for the model and batches (default on; faster on CPU)",
                                 kind="toggle")
    # input size and multi-scale
    size: int | None = option(None, "training and evaluation input size (default: the model's, 416 or 640)")
    multiscale: bool = option(True, "multi-scale training (default on)", kind="toggle")
    multiscale_range: int | None = option(
        None, f"multi-scale training sizes: size +- N*32 (default: official {OFFICIAL_SIZE_STEPS}, nano and tiny 320-640;"
        f" finetune {FINETUNE_SIZE_STEPS}, centred on --size; --freeze-detector keeps the official)")
    size_range: tuple[int, int] | None = None  # explicit (min, max); None: from the recipe / range
    # augmentation (None: from the model's TrainingRecipe)
    no_aug: bool = option(False, "no augmentation at all (letterbox only)", kind="switch")
    mosaic: bool | None = option(None, "Mosaic (default: on, off with --freeze-detector)", kind="toggle")
    mixup: bool | None = option(None, "MixUp (default: the model's recipe, off for nano and tiny and with --freeze-detector)",
                                kind="toggle")
    mosaic_prob: float | None = option(None, "Mosaic probability (default: 1.0; nano 0.5)")
    mosaic_scale: tuple[float, float] | None = None
    # the official augmentation values, defined once in yoloxkit.data.augment.AugmentConfig
    mixup_prob: float = option(AugmentConfig.mixup_prob, "MixUp probability (default {default} where MixUp is on)")
    mixup_scale: tuple[float, float] = AugmentConfig.mixup_scale
    hsv_prob: float = AugmentConfig.hsv_prob
    flip_prob: float = AugmentConfig.flip_prob
    degrees: float = AugmentConfig.degrees
    translate: float = AugmentConfig.translate
    shear: float = AugmentConfig.shear
    # data loading
    workers: int | None = option(
        None, "data loader workers per process (default: 4, at most the CPUs available; none when training on"
        f" the CPU of a machine with {CPU_INLINE_LOADING_MAX_CPUS} CPUs or fewer)")
    cache_ram: bool = option(False, "cache decoded images in RAM", kind="switch")
    max_iters_per_epoch: int | None = option(None, "cap iterations per epoch (quick runs and tests)")
    # evaluation and feedback
    eval_interval: int | None = option(
        None, "evaluate every N epochs (default: official {official}, finetune {finetune}; every epoch in the no-aug phase; 0: never)")
    eval_conf: float = option(EVAL_CONF, "confidence threshold of evaluation (default {default})")
    eval_nms: float = option(EVAL_NMS, "NMS IoU threshold of evaluation (default {default})")
    visualize_assign: bool = option(False, "write PNGs of the SimOTA positives for a few images to OUT/assign", kind="switch")
    plots: bool = option(True, "PNG plots of losses and AP at the end (default on)", kind="toggle")
    tensorboard: bool = True
    progress: bool = option(True, "no progress bars", kind="off", flag="--no-progress")
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

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
        self.check_choices()
        spec = get_spec(self.model)
        recipe = training_recipe(spec.name)
        cfg = dataclasses.replace(self, model=spec.name)
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
            "mosaic": not cfg.freeze_detector, "mixup": recipe.enable_mixup and not cfg.freeze_detector,
            **{name: getattr(AugmentConfig, name) for name in _AUGMENT_FIELDS},
        }
        for name, value in derived.items():
            if getattr(cfg, name) is None:
                setattr(cfg, name, value)
        if cfg.size_range is None:
            # --freeze-detector keeps the official range its documented recipe was measured with (coco-mini,
            # 60 epochs: NMS-free AP 31.0 at 256-576; 30.7 at the fine-tune's 352-480)
            official = cfg.recipe == "official" or cfg.freeze_detector
            if cfg.multiscale_range is None and official and recipe.train_size_range is not None:
                cfg.size_range = tuple(recipe.train_size_range)  # official nano/tiny: 320..640 at any size
            else:
                steps = cfg.multiscale_range
                if steps is None:
                    steps = OFFICIAL_SIZE_STEPS if official else FINETUNE_SIZE_STEPS
                cfg.size_range = (max(32, cfg.size - 32 * steps), cfg.size + 32 * steps)
        if cfg.lr is None:
            scale = PSS_LR_SCALE if cfg.freeze_detector else FINETUNE_LR_SCALE if cfg.recipe == "finetune" else 1.0
            cfg.lr = LR_PER_IMAGE * cfg.batch_size * scale
        if cfg.ema is None:
            # The frozen detector needs no average, and averaging the fresh PSS branch over its last
            # few hundred steps costs it 0.5 AP (docs/end_to_end.md).
            cfg.ema = not cfg.freeze_detector
        if cfg.device is None:
            cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
        if cfg.workers is None:
            cfg.workers = default_workers(cfg.device)
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

    def check_choices(self) -> None:
        """Raise :class:`ConfigError` for a value outside its field's ``choices`` (the registries)."""
        check_choices(self)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid value."""
        validate_config(self)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()}


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
    changes, known = {}, {f.name for f in fields(cfg)}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in known:
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
