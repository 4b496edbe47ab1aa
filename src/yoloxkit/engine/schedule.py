"""The official YOLOX learning-rate schedule, evaluated per iteration.

Quadratic warm-up from ``warmup_lr`` to the base lr over ``warmup_epochs``, then a cosine from
the base lr down to ``min_lr_ratio * base lr``, reached ``no_aug_epochs`` before the end and
held there for those last epochs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["WarmupCosineSchedule"]


@dataclass
class WarmupCosineSchedule:
    """``lr(iteration)`` for a run of ``epochs * iters_per_epoch`` iterations (0-based)."""

    base_lr: float
    iters_per_epoch: int
    epochs: int
    warmup_epochs: float = 5
    no_aug_epochs: int = 15
    min_lr_ratio: float = 0.05
    warmup_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.iters_per_epoch < 1:
            raise ValueError(f"iters_per_epoch must be >= 1, got {self.iters_per_epoch}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")

    @property
    def total_iters(self) -> int:
        return self.iters_per_epoch * self.epochs

    @property
    def warmup_iters(self) -> int:
        return int(round(self.iters_per_epoch * self.warmup_epochs))

    @property
    def flat_iters(self) -> int:
        """Iterations at the end run at the minimum lr."""
        return self.iters_per_epoch * self.no_aug_epochs

    @property
    def min_lr(self) -> float:
        return self.base_lr * self.min_lr_ratio

    def lr(self, iteration: int) -> float:
        """Learning rate for global iteration ``iteration`` (the official formula)."""
        warmup, flat, total = self.warmup_iters, self.flat_iters, self.total_iters
        if warmup > 0 and iteration <= warmup:
            return (self.base_lr - self.warmup_lr) * (iteration / warmup) ** 2 + self.warmup_lr
        if iteration >= total - flat:
            return self.min_lr
        cosine_span = total - warmup - flat
        if cosine_span <= 0:
            return self.min_lr
        progress = (iteration - warmup) / cosine_span
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        """Take over the settings of a saved :meth:`state_dict` (in place)."""
        restored = self.from_state_dict(state)
        for name, value in asdict(restored).items():
            setattr(self, name, value)

    @classmethod
    def from_state_dict(cls, state: dict) -> "WarmupCosineSchedule":
        return cls(**state)
