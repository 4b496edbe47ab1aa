"""The training recipes: the official YOLOX settings per model size and the fine-tuning preset.

A run uses one of two recipes (:data:`RECIPE_NAMES`): ``"official"``, the official YOLOX recipe
exactly, or ``"finetune"``, the official recipe with the changes of :data:`FINETUNE_PRESET` for
starting from pretrained weights (the default whenever the run starts from pretrained weights).
:class:`TrainingRecipe` is the part of the official recipe that depends on the model size
(multi-scale range, Mosaic and MixUp settings). :meth:`yoloxkit.engine.config.TrainConfig.resolved`
reads these tables; nothing else restates their values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..data.augment import AugmentConfig
from ..models import get_spec

__all__ = [
    "TrainingRecipe",
    "training_recipe",
    "preset_value",
    "is_scratch",
    "LR_PER_IMAGE",
    "OFFICIAL_EPOCHS",
    "PSS_BRANCH_EPOCHS",
    "PSS_LR_SCALE",
    "FINETUNE_LR_SCALE",
    "OFFICIAL_SIZE_STEPS",
    "FINETUNE_SIZE_STEPS",
    "RECIPE_NAMES",
    "RECIPES",
    "OFFICIAL_PRESET",
    "FINETUNE_PRESET",
    "SCRATCH",
    "OPTIMIZER_NAMES",
    "ADAMW_LR_SCALE",
    "WEIGHT_DECAY",
]

LR_PER_IMAGE = 0.01 / 64  # the official "0.01 per 64 images"

#: ``--optimizer``: the official SGD (Nesterov momentum 0.9), or AdamW as mmyolo's YOLOX recipe
#: has it (``yolox_s_fast_8xb32-300e-rtmdet-hyp``: lr 0.004 for 256 images, that is a tenth of the
#: official SGD rate per image, weight decay 0.05, none on norms and biases); the recipes' lr
#: factors (finetune, domain shift) apply to either. Measured in docs/BENCHMARKS.md.
OPTIMIZER_NAMES = ("sgd", "adamw")
ADAMW_LR_SCALE = 0.1
WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}
#: --freeze-detector: the fresh PSS branch alone learns at 20x the official rate. On coco-mini
#: (nano-e2e, 60 epochs, batch 16) 0.0025 barely moved its loss; 0.05 and 0.2 reached the same AP.
PSS_LR_SCALE = 20.0

#: finetune: twice the official rate per image. A fine-tune runs tens of epochs where the official
#: recipe runs 300, and a domain shift must move the whole network within them. BCCD (nano, 416,
#: batch 16, 30 epochs, this change alone): test mAP50-95 58.6 -> 60.3, RBC AP50 82.8 -> 84.6; the
#: same-domain runs keep their level (coco-mini 5 epochs: every epoch >= 30.5; coco-mini-3cls 10
#: epochs: see docs/BENCHMARKS.md).
FINETUNE_LR_SCALE = 2.0

#: the official training budget (from scratch on COCO; also the fine-tuning default)
OFFICIAL_EPOCHS = 300
#: --freeze-detector: the PSS branch alone, on plain images (docs/end_to_end.md: 60 epochs on coco-mini
#: reach NMS-free AP 31.0; 10 epochs, 20.8)
PSS_BRANCH_EPOCHS = 60

#: the official multi-scale range: size +- 5 strides of 32 (nano and tiny: a fixed 320..640)
OFFICIAL_SIZE_STEPS = 5
#: finetune: size +- 2 strides, centred on the evaluation size. A fine-tune is judged at one size,
#: and a centred range costs what that size costs (nano's official 320..640 at 416 costs 1.4x).
#: BCCD, nano, 416, 30 epochs, lr 0.005: test 92.6 / 60.4 at 352..480 against 92.4 / 60.3 at 320..640.
FINETUNE_SIZE_STEPS = 2

RECIPE_NAMES = ("official", "finetune")
#: ``--weights none`` (or ``--from-scratch``): random initial weights
SCRATCH = "none"


@dataclass(frozen=True)
class TrainingRecipe:
    """The official training settings that depend on the model size."""

    train_size_range: tuple[int, int] | None = None  # fixed multi-scale range; None: size +- 5*32
    mosaic: bool = True  # Mosaic (and with it MixUp and the random affine) at all
    mosaic_prob: float = 1.0
    mosaic_scale: tuple[float, float] = (0.1, 2.0)
    mixup_prob: float = 1.0
    enable_mixup: bool = True

    def augment(self, **overrides: Any) -> AugmentConfig:
        """This recipe's :class:`AugmentConfig` (official values elsewhere), ``overrides`` applied."""
        base = AugmentConfig(mosaic_prob=self.mosaic_prob if self.mosaic else 0.0,
                             mosaic_scale=tuple(self.mosaic_scale),
                             enable_mixup=self.enable_mixup and self.mosaic, mixup_prob=self.mixup_prob)
        return dataclasses.replace(base, **overrides)


#: The schedule-and-loss settings of each recipe, for the fields whose default is ``None``.
#: ``warmup_epochs`` and ``no_aug_epochs`` of the fine-tuning preset are fractions of the run
#: (at least one epoch each; see :func:`preset_value`).
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
    "recalibrate_bn": False,
    "trunk_lr_scale": 1.0,
    "frozen_stages": 0,
    "shifted_lr_scale": 1.0,
    "l1_from_start": False,
}
FINETUNE_PRESET: dict[str, Any] = {
    "warmup_epochs": 0.1,  # of the run, at least 1 epoch
    "no_aug_epochs": 0.2,  # of the run, at least 1 epoch
    "eval_interval": 1,
    "ema_decay": 0.98,
    "ema_ramp": 0.0,  # no ramp: the average starts at the pretrained weights
    "loss_normalizer": "running",
    "freeze_trunk": False,
    "fit_new_classes": True,
    "eval_start": True,
    "recalibrate_bn": True,
    "trunk_lr_scale": 1.0,
    "frozen_stages": 1,
    "shifted_lr_scale": 1.5,  # engine/domain_shift.py: 3x the official lr per image when the data is out of domain
    "l1_from_start": None,  # auto: on when the data is out of domain (engine/domain_shift.py)
}
_FRACTION_FIELDS = ("warmup_epochs", "no_aug_epochs")


def is_scratch(weights: str | None) -> bool:
    """Whether ``weights`` asks for random initial weights (``"none"``, any case)."""
    return isinstance(weights, str) and weights.strip().lower() in (SCRATCH, "scratch")


def preset_value(recipe: str, name: str, epochs: int) -> Any:
    """The value of preset field ``name`` in ``recipe`` for a run of ``epochs`` epochs."""
    value = (FINETUNE_PRESET if recipe == "finetune" else OFFICIAL_PRESET)[name]
    if recipe == "finetune" and name in _FRACTION_FIELDS:
        whole = max(1, int(round(value * epochs)))
        return whole if name == "no_aug_epochs" else float(whole)
    return value


_SMALL_MODEL = TrainingRecipe(train_size_range=(320, 640), mosaic_scale=(0.5, 1.5), enable_mixup=False)
#: The paper's roadmap (Table 2, docs/roadmap.md): its YOLOv3 baseline recipe trains at 448..832
#: with flips and colour jitter only; "+ strong augmentation" adds Mosaic and MixUp (the official
#: settings) and every later row keeps them. yolox-darknet53 (the "+ SimOTA" row) keeps its own
#: official recipe (480..800).
_ROADMAP_PLAIN = TrainingRecipe(train_size_range=(448, 832), mosaic=False, enable_mixup=False)
_ROADMAP_STRONG = TrainingRecipe(train_size_range=(448, 832))
RECIPES: dict[str, TrainingRecipe] = {
    "yolox-nano": dataclasses.replace(_SMALL_MODEL, mosaic_prob=0.5),
    "yolox-tiny": _SMALL_MODEL,
    "yolox-roadmap-baseline": _ROADMAP_PLAIN,
    "yolox-roadmap-decoupled": _ROADMAP_PLAIN,
    "yolox-roadmap-strongaug": _ROADMAP_STRONG,
    "yolox-roadmap-anchorfree": _ROADMAP_STRONG,
    "yolox-roadmap-multipos": _ROADMAP_STRONG,
}


def training_recipe(model: str) -> TrainingRecipe:
    """The official recipe of model ``model`` (any name :func:`yoloxkit.models.get_spec` accepts):
    nano and tiny train at 320..640 with Mosaic scale (0.5, 1.5) and no MixUp, nano with Mosaic
    p=0.5; the roadmap rows of the paper's Table 2 as :data:`RECIPES` says; the other sizes use
    the defaults of :class:`TrainingRecipe`."""
    return RECIPES.get(get_spec(model).name, TrainingRecipe())


def preset_help(name: str) -> dict[str, str]:
    """The two recipes' values of preset field ``name`` as help texts put them (``official``,
    ``finetune``; a fraction of the run as a percentage), so that help texts never restate them;
    empty for a field without a preset."""
    if name not in OFFICIAL_PRESET:
        return {}

    def text(value: Any, fraction: bool) -> str:
        if fraction:
            return f"{value * 100:g}%% of the run"  # argparse formats help with %
        return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)

    return {"official": text(OFFICIAL_PRESET[name], False),
            "finetune": text(FINETUNE_PRESET[name], name in _FRACTION_FIELDS)}
