"""``build_model`` as the package exports it: a zoo model that carries the YOLOX loss.

:mod:`yoloxkit.models` holds the networks only (forward and decode); the loss lives above them in
:mod:`yoloxkit.losses`. This module joins the two, so that ``model(images, targets)`` in train
mode returns the loss dict, as the official ``YOLOX`` module does.
"""

from __future__ import annotations

from .losses import YoloxLoss
from .models import YOLOX
from .models import build_model as build_network

__all__ = ["build_model", "attach_loss"]


def attach_loss(model: YOLOX, use_l1: bool = False) -> YoloxLoss:
    """Give ``model`` a fresh :class:`~yoloxkit.losses.YoloxLoss`; return it (its owner flips ``use_l1``)."""
    criterion = YoloxLoss(use_l1=use_l1)
    model.criterion = criterion
    return criterion


def build_model(
    name: str | None = "yolox-s",
    num_classes: int = 80,
    *,
    depth: float | None = None,
    width: float | None = None,
    depthwise: bool | None = None,
    act: str | None = None,
) -> YOLOX:
    """Build a YOLOX model by name (or ``depth``/``width`` with ``name=None``) with its loss attached.

    Same arguments as :func:`yoloxkit.models.build_model`; official state-dict key names.
    """
    model = build_network(name, num_classes, depth=depth, width=width, depthwise=depthwise, act=act)
    attach_loss(model)
    return model
