"""``build_model`` as the package exports it: a zoo model that carries the YOLOX loss.

:mod:`yoloxkit.models` holds the networks only (forward and decode); the loss lives above them in
:mod:`yoloxkit.losses`. This module joins the two, so that ``model(images, targets)`` in train
mode returns the loss dict, as the official ``YOLOX`` module does.
"""

from __future__ import annotations

from typing import Any

from .losses import YoloxLoss
from .models import YOLOX
from .models import build_model as build_network

__all__ = ["build_model", "attach_loss"]


def attach_loss(model: YOLOX, use_l1: bool = False) -> YoloxLoss:
    """Give ``model`` a fresh :class:`~yoloxkit.losses.YoloxLoss`; return it (its owner flips ``use_l1``)."""
    criterion = YoloxLoss(use_l1=use_l1)
    model.criterion = criterion
    return criterion


def build_model(name: str | None = "yolox-s", num_classes: int = 80, **architecture: Any) -> YOLOX:
    """Build a YOLOX model by name with its loss attached (official state-dict key names).

    ``architecture`` takes the overrides of :func:`yoloxkit.models.build_model` (``depth``,
    ``width``, ``depthwise``, ``act``; ``name=None`` with ``depth`` and ``width`` for a custom size).
    """
    model = build_network(name, num_classes, **architecture)
    attach_loss(model)
    return model
