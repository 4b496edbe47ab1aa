"""The official YOLOX optimiser: SGD (momentum 0.9, nesterov) with three parameter groups; or
AdamW (``--optimizer adamw``) over the same groups, weight decay on conv/linear weights only.

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


def build_optimizer(
    model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4, nesterov: bool = True,
    trunk_lr_scale: float = 1.0, name: str = "sgd",
) -> torch.optim.Optimizer:
    """SGD (``name="sgd"``) or AdamW (``"adamw"``, torch's default betas and eps) over the groups of
    :func:`parameter_groups` (decay on conv/linear weights only); with ``trunk_lr_scale != 1``,
    ``model.backbone`` gets its own three groups at that fraction of the lr."""
    kinds = dict(zip(("norm", "weights", "biases"), parameter_groups(model)))
    trunk = getattr(model, "backbone", None)
    in_trunk = {id(p) for p in trunk.parameters()} if trunk_lr_scale != 1.0 and isinstance(trunk, nn.Module) else set()
    groups = []
    for prefix, scale, inside in (("trunk_", trunk_lr_scale, True), ("", 1.0, False)):
        for kind, params in kinds.items():
            chosen = [p for p in params if (id(p) in in_trunk) == inside]
            if chosen:
                groups.append({"params": chosen, "weight_decay": weight_decay if kind == "weights" else 0.0,
                               "name": prefix + kind, "lr_scale": scale, "lr": lr * scale})
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name != "sgd":
        raise ValueError(f"optimizer must be sgd or adamw, got {name!r}")
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group (times the group's ``lr_scale``, if any)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
