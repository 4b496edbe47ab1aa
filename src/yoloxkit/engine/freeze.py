"""Freezing parts of a YOLOX model: the trunk (backbone and neck) for fine-tuning, or the whole
detector of an end-to-end model, so that only its PSS branch learns.

A frozen part keeps its pretrained weights and its BatchNorm statistics: its parameters stop
requiring gradients (so the optimiser never sees them and no gradient is computed for them) and
its BatchNorm layers run in eval mode, with the running statistics the weights were trained
with, also while the rest of the model trains.
"""

from __future__ import annotations

from torch import nn

from ..models.head import is_pss_key
from .config import ConfigError

__all__ = ["trunk_of", "freeze_trunk", "freeze_stages", "STAGES", "freeze_detector", "keep_frozen_eval"]

#: the backbone's stages, input first (CSPDarknet and Darknet-53 alike)
STAGES = ("stem", "dark2", "dark3", "dark4", "dark5")


def trunk_of(model: nn.Module) -> nn.Module:
    """The backbone-and-neck module of a YOLOX model (``model.backbone``: CSPDarknet/Darknet and
    the PAFPN/FPN, as in the official key names)."""
    trunk = getattr(model, "backbone", None)
    if not isinstance(trunk, nn.Module):
        raise TypeError(f"{type(model).__name__} has no .backbone module to freeze")
    return trunk


def freeze_trunk(model: nn.Module) -> int:
    """Stop the trunk's parameters from requiring gradients and put it in eval mode; returns the
    number of parameters frozen. Call before the optimiser is built (and before DDP wraps it)."""
    return _freeze(trunk_of(model))


def _freeze(module: nn.Module) -> int:
    """Stop ``module``'s parameters from requiring gradients and put it in eval mode; returns
    the number of parameters frozen."""
    count = 0
    for param in module.parameters():
        param.requires_grad_(False)
        count += param.numel()
    module.eval()
    return count


def freeze_stages(model: nn.Module, count: int) -> int:
    """Freeze the first ``count`` stages of the backbone (:data:`STAGES`: 1 is the stem alone),
    as detectron2's ``FREEZE_AT``; returns the number of parameters frozen."""
    backbone = getattr(trunk_of(model), "backbone", None)
    frozen = 0
    for name in STAGES[: max(0, count)]:
        stage = getattr(backbone, name, None)
        if not isinstance(stage, nn.Module):
            raise TypeError(f"{type(model).__name__} has no backbone stage {name!r} to freeze")
        frozen += _freeze(stage)
    return frozen


def freeze_detector(model: nn.Module) -> int:
    """Freeze everything of an end-to-end model but its PSS branch; returns the parameters frozen.

    The stop-gradient already keeps the PSS loss from reaching the detector; frozen, the detector
    also skips its own loss and backward pass, so training the branch costs little more than a
    forward pass.
    """
    if not getattr(model, "end_to_end", False):
        raise ConfigError("--freeze-detector trains only the PSS branch of an end-to-end model; use a -e2e model")
    count = 0
    for name, param in model.named_parameters():
        if not is_pss_key(name):
            param.requires_grad_(False)
            count += param.numel()
    keep_frozen_eval(model)
    return count


def keep_frozen_eval(model: nn.Module) -> None:
    """Put frozen parts back in eval mode after ``model.train()`` (which flips every module):
    each module that has parameters and none requiring a gradient, so its BatchNorms keep their
    running statistics."""
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
