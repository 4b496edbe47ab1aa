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

import yaml

from ..data.augment import AugmentConfig
from ..infer.defaults import EVAL_CONF, EVAL_NMS
from ..losses import NORMALIZERS, PSS_TARGETS
from ..text import read_text
from .config_checks import ConfigError, check_choices, validate_config
from .loader_workers import CPU_INLINE_LOADING_MAX_CPUS
from .options import option
from .resolve import fill_defaults
from .recipes import (
    FINETUNE_LR_SCALE,
    FINETUNE_PRESET,
    FINETUNE_SIZE_STEPS,
    LR_PER_IMAGE,
    OFFICIAL_EPOCHS,
    OFFICIAL_PRESET,
    OFFICIAL_SIZE_STEPS,
    OPTIMIZER_NAMES,
    PSS_BRANCH_EPOCHS,
    RECIPE_NAMES,
    SCRATCH,
    WEIGHT_DECAY,
    TrainingRecipe,
    is_scratch,
    training_recipe,
)

__all__ = [
    "TrainConfig",
    "ConfigError",
    "TrainingRecipe",
    "training_recipe",
    "default_config",
    "load_config",
    "read_config_file",
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

    data: str = option("", "dataset directory (COCO, VOC or YOLO-txt layout) or a data YAML (with --resume: the run's own)")
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
    resume: bool = option(False, "continue from OUT/last.pth (weights, EMA, optimizer, schedule, RNG) with the run's own"
                          " settings (OUT/config.json; a flag that differs is refused, but --epochs, --workers, --device,"
                          " --time, --patience and the like); without --out, the newest run", kind="switch")
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
    optimizer: str | None = option(
        None, "sgd: the official SGD with Nesterov momentum (default); adamw: AdamW at a tenth of SGD's lr per image"
        " and weight decay 0.05 (mmyolo's YOLOX recipe); neither decays norms or biases", choices=OPTIMIZER_NAMES)
    momentum: float = option(0.9, "SGD momentum (default {default})")
    weight_decay: float | None = option(
        None, f"weight decay on conv/linear weights (default: sgd {WEIGHT_DECAY['sgd']:g}, adamw {WEIGHT_DECAY['adamw']:g})")
    # when to stop (None: off; a resumed run keeps its own)
    patience: int | None = option(
        None, "early stopping: end the run when N evaluations in a row bring no improvement of the validation metric",
        metavar="N")
    min_delta: float | None = option(None, "early stopping: the smallest rise of the metric, in points, that counts (default 0)", metavar="POINTS")
    time: float | None = option(
        None, "time budget in hours (0.5: 30 minutes): the epochs are fitted, after timing the first steps and again"
        " after each epoch, so that warm-up, cosine and the no-aug tail all end within it; --epochs caps them", metavar="HOURS")
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
    size: int | None = option(
        None, "training and evaluation input size (default: the model's, 416 or 640; the official recipe of nano and"
        " tiny trains at 320-640 whatever it is, unless --multiscale-range N or --no-multiscale)")
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
    # experiment trackers (optional extras; engine/experiment_trackers.py)
    mlflow: str | None = option(
        None, "log the run to MLflow: a tracking URI, or a folder as a local file store (no value: MLFLOW_TRACKING_URI,"
        " else ./mlruns);"
        " pip install 'yoloxkit[mlflow]'", nargs="?", const="", metavar="URI")
    wandb: str | None = option(
        None, "log the run to Weights & Biases, project PROJECT or ENTITY/PROJECT (no value: yoloxkit);"
        " WANDB_MODE=offline keeps it on disk in OUT/wandb; pip install 'yoloxkit[wandb]'", nargs="?", const="yoloxkit",
        metavar="PROJECT")
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
        """A copy with every model-dependent ``None`` filled with the official value
        (:func:`.resolve.fill_defaults`), checked."""
        self.check_choices()
        cfg = fill_defaults(self)
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
    return update_config(base or TrainConfig(), read_config_file(path), str(path))


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping of option: value in YAML file ``path`` (its keys are options given)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(read_text(path, "training config file"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse config file {path}: {str(exc).splitlines()[0]}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return values
