"""The official YOLOX optimiser: SGD (momentum 0.9, nesterov) with three parameter groups.

Fine-tuning may give the trunk (backbone and neck) its own learning rate, a fraction
``trunk_lr_scale`` of the head's: the trunk's three groups then carry ``lr_scale`` and
:func:`set_lr` applies it on every step.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["parameter_groups", "build_optimizer", "set_lr"]


def parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """Split parameters into ``(norm weights, conv/linear weights, biases)``; only the
    middle group gets weight decay."""
    norm_weights: list[nn.Parameter] = []
    weights: list[nn.Parameter] = []
    biases: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen or not param.requires_grad:
                continue
            seen.add(id(param))
            if name == "bias":
                biases.append(param)
            elif isinstance(module, nn.modules.batchnorm._NormBase) or isinstance(module, nn.GroupNorm):
                norm_weights.append(param)
            else:
                weights.append(param)
    return norm_weights, weights, biases


def _groups(model: nn.Module, weight_decay: float, prefix: str = "", lr_scale: float = 1.0,
            exclude: set[int] | None = None) -> list[dict]:
    norm_weights, weights, biases = parameter_groups(model)
    if exclude:
        norm_weights, weights, biases = ([p for p in ps if id(p) not in exclude] for ps in (norm_weights, weights, biases))
    groups = [
        {"params": norm_weights, "weight_decay": 0.0, "name": f"{prefix}norm"},
        {"params": weights, "weight_decay": weight_decay, "name": f"{prefix}weights"},
        {"params": biases, "weight_decay": 0.0, "name": f"{prefix}biases"},
    ]
    for group in groups:
        group["lr_scale"] = lr_scale
    return groups


def build_optimizer(
    model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4, nesterov: bool = True,
    trunk_lr_scale: float = 1.0,
) -> torch.optim.SGD:
    """SGD over the groups of :func:`parameter_groups` (decay on conv/linear weights only); with
    ``trunk_lr_scale != 1``, ``model.backbone`` gets its own three groups at that fraction of the lr."""
    trunk = getattr(model, "backbone", None) if trunk_lr_scale != 1.0 else None
    if isinstance(trunk, nn.Module):
        trunk_groups = _groups(trunk, weight_decay, "trunk_", trunk_lr_scale)
        taken = {id(p) for g in trunk_groups for p in g["params"]}
        groups = trunk_groups + _groups(model, weight_decay, exclude=taken)
    else:
        groups = _groups(model, weight_decay)
    groups = [g for g in groups if g["params"]]
    for group in groups:
        group["lr"] = lr * group["lr_scale"]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group (times the group's ``lr_scale``, if any)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
