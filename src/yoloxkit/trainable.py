"""``build_model`` as the package exports it: a zoo model that carries the YOLOX loss.

:mod:`yoloxkit.models` holds the networks only (forward and decode, :func:`~yoloxkit.models.
build_network`); the loss lives above them in :mod:`yoloxkit.losses`. This module joins the two, so
that ``model(images, targets)`` in train mode returns the loss dict, as the official ``YOLOX``
module does.
"""

from __future__ import annotations

from typing import Any

from .losses import YoloxLoss
from .models import YOLOX, build_network, get_spec

__all__ = ["build_model", "attach_loss"]


def attach_loss(model: YOLOX, criterion: YoloxLoss | None = None, *, use_l1: bool | None = None) -> YoloxLoss:
    """Give ``model`` its criterion and return it: ``criterion`` built whole by the caller, or a
    default :class:`~yoloxkit.losses.YoloxLoss`.

    ``use_l1=`` (the earlier form, ``attach_loss(model, use_l1=True)``) sets the L1 switch of the
    criterion attached. A ``model.head.use_l1`` set before any criterion was attached is handed to
    it (the head keeps the request), unless ``use_l1=`` says otherwise.
    """
    if isinstance(criterion, bool):  # attach_loss(model, True): the earlier positional use_l1
        criterion, use_l1 = None, criterion
    if criterion is None:
        criterion = YoloxLoss()
    model.criterion = criterion
    if use_l1 is not None:
        criterion.use_l1 = use_l1
    return criterion


def build_model(name: str | None = "yolox-s", num_classes: int = 80, **architecture: Any) -> YOLOX:
    """Build a YOLOX model by name with its loss attached (official state-dict key names); the loss
    assigns labels as the model's row of the paper's roadmap does (SimOTA for every YOLOX model,
    docs/roadmap.md for the ``yolox-roadmap-*`` rows).

    ``architecture`` takes the overrides of :func:`yoloxkit.models.build_network` (``depth``,
    ``width``, ``depthwise``, ``act``, ``end_to_end``; ``name=None`` with ``depth`` and ``width``
    for a custom size).
    """
    model = build_network(name, num_classes, **architecture)
    attach_loss(model, YoloxLoss(assigner=get_spec(name).assigner) if name is not None else None)
    return model
