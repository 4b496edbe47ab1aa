"""Augmentation settings of the training pipeline, with the official YOLOX defaults.

The values that differ per model size (nano/tiny) are part of the training recipe:
:func:`yoloxkit.engine.config.training_recipe` builds the settings of a named model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["AugmentConfig"]


@dataclass(frozen=True)
class AugmentConfig:
    """What the training pipeline does to each sample (official YOLOX-S..X values by default).

    Mosaic (probability ``mosaic_prob``) combines four images and applies the random affine
    (``degrees``, ``translate``, ``mosaic_scale``, ``shear``); MixUp (``mixup_prob``, only if
    ``enable_mixup``) then blends in a fifth. A sample with boxes then gets HSV jitter
    (``hsv_prob``) and a horizontal flip (``flip_prob``). Boxes whose sides are not longer than
    ``min_box_side`` pixels (or smaller than ``min_box_area``, or more elongated than
    ``max_box_aspect``) are dropped.

    Samples without boxes, as in the official TrainTransform: a sample that has no boxes is
    only padded (no HSV, no flip), and when the filter drops every box of a sample, it falls back
    to the image before HSV and flip with all its unfiltered boxes. ``keep_background=True``
    instead treats them as background samples: HSV and flip for every sample, and a sample
    whose boxes are all filtered keeps its augmented image with no targets.
    """

    mosaic_prob: float = 1.0
    mosaic_scale: tuple[float, float] = (0.1, 2.0)
    enable_mixup: bool = True
    mixup_prob: float = 1.0
    mixup_scale: tuple[float, float] = (0.5, 1.5)
    degrees: float = 10.0
    translate: float = 0.1
    shear: float = 2.0
    hsv_prob: float = 1.0
    flip_prob: float = 0.5
    min_box_side: float = 1.0
    min_box_area: float = 0.0
    max_box_aspect: float | None = None
    keep_background: bool = False

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all: letterbox only (for fine-tuning checks, ``--no-aug``)."""
        return cls(mosaic_prob=0.0, enable_mixup=False, mixup_prob=0.0, hsv_prob=0.0, flip_prob=0.0)

    def without_mosaic(self) -> "AugmentConfig":
        """The same settings with Mosaic and MixUp off (the official last no-aug epochs keep
        HSV and flip)."""
        return dataclasses.replace(self, mosaic_prob=0.0, enable_mixup=False)

    def validate(self) -> None:
        for name in ("mosaic_prob", "mixup_prob", "hsv_prob", "flip_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name in ("mosaic_scale", "mixup_scale"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be 0 < low <= high, got {(low, high)}")
