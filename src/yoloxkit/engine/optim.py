"""The official YOLOX optimiser: SGD (momentum 0.9, nesterov) with three parameter groups."""

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


def build_optimizer(
    model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4, nesterov: bool = True
) -> torch.optim.SGD:
    """SGD over the groups of :func:`parameter_groups` (decay on conv/linear weights only)."""
    norm_weights, weights, biases = parameter_groups(model)
    groups = [
        {"params": norm_weights, "weight_decay": 0.0, "name": "norm"},
        {"params": weights, "weight_decay": weight_decay, "name": "weights"},
        {"params": biases, "weight_decay": 0.0, "name": "biases"},
    ]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=lr, momentum=momentum, nesterov=nesterov)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
