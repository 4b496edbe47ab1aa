"""Freezing the trunk (backbone and neck) of a YOLOX model for fine-tuning.

A frozen trunk keeps its pretrained weights and its BatchNorm statistics: its parameters stop
requiring gradients (so the optimiser never sees them and no gradient is computed for them) and
its BatchNorm layers run in eval mode, with the running statistics the weights were trained
with, also while the rest of the model trains. Only the decoupled head learns.
"""

from __future__ import annotations

from torch import nn

__all__ = ["trunk_of", "freeze_trunk", "keep_trunk_frozen"]


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
    trunk = trunk_of(model)
    count = 0
    for param in trunk.parameters():
        param.requires_grad_(False)
        count += param.numel()
    trunk.eval()
    return count


def keep_trunk_frozen(model: nn.Module) -> None:
    """Put a frozen trunk back in eval mode after ``model.train()`` (which flips every module)."""
    trunk = trunk_of(model)
    if not any(p.requires_grad for p in trunk.parameters()):
        trunk.eval()
