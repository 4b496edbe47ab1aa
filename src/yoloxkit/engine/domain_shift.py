"""The fine-tuning recipe's domain-shift rule: when the starting weights do not fit the data, the
whole network trains harder.

The fine-tune evaluates its starting weights on the validation split as epoch 0 (``eval_start``).
When they score below what the model scores on its own domain, the published COCO val2017 AP of
its weights (:attr:`yoloxkit.models.ModelSpec.coco_ap`, mAP50-95), the data lies outside the
domain the weights learnt, and the network has to move further in the same epochs:

- the lr is multiplied by ``shifted_lr_scale`` (finetune: 1.5, so 3x the official lr per image;
  official: 1);
- the L1 box loss runs from the first epoch (``l1_from_start``: finetune "auto", ``None``), not
  only in the no-aug tail: the box regression has new shapes and sizes to learn.

Data the weights already fit keeps the recipe as it is, which keeps what the weights know.
Measured (nano, 416; docs/BENCHMARKS.md): BCCD blood cells start at mAP50-95 8-13, far below
nano's 25.8; test mAP50-95 60.3-60.4 at the recipe's lr, 60.7-61.1 at 3x, 61.2-61.3 at 3x with L1
throughout. coco-mini and its three-class merge start at 31 and 34 (in domain); there 3x ended
coco-mini's 5 epochs at 29.8 (30.5 at 2x), and L1 throughout ended coco-mini-3cls's 10 at 30.6
(31.2 without).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..models import get_spec

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["ShiftAdaptation", "ShiftRule", "shift_rule", "start_ap50_95", "is_domain_shift", "adapt_to_domain_shift"]

#: the keys of mAP50-95 in the COCO and VOC evaluators' metrics
_AP50_95_KEYS = ("AP", "mAP50_95")


@dataclass(frozen=True)
class ShiftAdaptation:
    """What the rule changes: the new base ``lr``, whether the L1 loss starts now (``l1``), and
    the log line that says so."""

    lr: float
    l1: bool
    line: str


def start_ap50_95(metrics: Mapping[str, Any]) -> float | None:
    """The mAP50-95 (percent) in an evaluation's ``metrics``, COCO or VOC; ``None`` if absent."""
    for key in _AP50_95_KEYS:
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def is_domain_shift(start_ap: float, reference_ap: float) -> bool:
    """Whether weights scoring ``start_ap`` (mAP50-95, percent) on the user's validation images
    are outside their domain: below ``reference_ap``, their published AP on their own domain
    (``0``: unknown, never a shift)."""
    return reference_ap > 0 and start_ap < reference_ap


@dataclass(frozen=True)
class ShiftRule:
    """What a resolved config does on a domain shift: multiply the lr by ``lr_scale`` (1: keep
    it), start the L1 loss at once (``l1``), measured against ``reference_ap``."""

    lr_scale: float
    l1: bool
    reference_ap: float


def shift_rule(cfg: TrainConfig) -> ShiftRule | None:
    """The rule of the resolved ``cfg``; ``None`` when a shift would change nothing (a model without
    a published COCO AP, ``shifted_lr_scale`` 1 and ``l1_from_start`` set by the user)."""
    reference = get_spec(cfg.model).coco_ap
    scale = cfg.shifted_lr_scale if cfg.shifted_lr_scale is not None else 1.0
    l1 = cfg.l1_from_start is None
    if reference <= 0 or (scale == 1.0 and not l1):
        return None
    return ShiftRule(scale, l1, reference)


def adapt_to_domain_shift(cfg: TrainConfig, metrics: Mapping[str, Any]) -> ShiftAdaptation | None:
    """What the domain-shift rule changes for the resolved ``cfg``, given the starting weights'
    evaluation ``metrics``; ``None`` when nothing changes (data in the domain, or no rule)."""
    rule = shift_rule(cfg)
    start = start_ap50_95(metrics)
    if rule is None or start is None or not is_domain_shift(start, rule.reference_ap):
        return None
    lr = cfg.lr * rule.lr_scale
    changes = [f"the lr is {lr:g} ({rule.lr_scale:g}x the recipe's {cfg.lr:g})"] if rule.lr_scale != 1.0 else []
    changes += ["the L1 box loss runs from the first epoch"] if rule.l1 else []
    line = (f"domain shift: the starting weights score mAP50-95 {start:.1f} on the validation images, below"
            f" {get_spec(cfg.model).name}'s {rule.reference_ap:g} on COCO val2017: {' and '.join(changes)}"
            " (--shifted-lr-scale 1 and --no-l1-from-start keep the recipe)")
    return ShiftAdaptation(lr, rule.l1, line)
