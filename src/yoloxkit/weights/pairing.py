"""Pairing the convolutions of an ONNX export with the ``nn.Conv2d`` modules of a model.

The model's convs are taken in the order its forward pass calls them. For each, the candidates
are the ONNX convs not yet paired whose upstream convs are all paired, so that two valid
execution orders of the same graph (e.g. a CSP block's branches) still line up; the first
candidate with the same shape and attributes is taken.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import WeightsMismatchError
from .identify import guess_hint
from .onnx_reader import OnnxConv, OnnxWeights

__all__ = ["pair_convs", "batchnorm_of"]


def _traced_convs(model: nn.Module, input_hw: tuple[int, int]) -> list[tuple[str, nn.Conv2d]]:
    """The model's ``nn.Conv2d`` modules in the order its forward pass calls them."""
    names = {module: name for name, module in model.named_modules()}
    order: list[nn.Conv2d] = []
    hooks = [
        m.register_forward_hook(lambda module, _inp, _out: order.append(module))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_hw, dtype=param.dtype, device=param.device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    seen: set[nn.Conv2d] = set()
    traced = []
    for module in order:
        if module not in seen:
            seen.add(module)
            traced.append((names[module], module))
    return traced


def _fits(conv: nn.Conv2d, onnx_conv: OnnxConv) -> bool:
    if tuple(conv.weight.shape) != onnx_conv.shape or conv.groups != onnx_conv.groups:
        return False
    if tuple(conv.stride) != tuple(onnx_conv.strides) or tuple(conv.dilation) != tuple(onnx_conv.dilations):
        return False
    pads = tuple(conv.padding) * 2 if isinstance(conv.padding, tuple) else None
    return pads is None or pads == tuple(onnx_conv.pads)


def pair_convs(model: nn.Module, weights: OnnxWeights) -> list[tuple[str, nn.Conv2d, OnnxConv]]:
    """Pair each ``nn.Conv2d`` of ``model`` (traced forward order) with its ONNX Conv node.

    For each traced conv, the candidates are the ONNX convs not yet paired whose upstream convs are
    all paired; the first candidate (in graph order) with the same shape and attributes is taken.
    Raises :class:`WeightsMismatchError` naming the first conv that has no partner.
    """
    size = weights.input_hw or (64, 64)
    traced = _traced_convs(model, (min(size[0], 128), min(size[1], 128)))
    source = str(weights.path)
    if len(traced) != len(weights.convs):
        raise WeightsMismatchError(
            f"{source} has {len(weights.convs)} convs but the model has {len(traced)}{guess_hint(weights)}"
        )
    paired: set[int] = set()
    pairs = []
    for name, conv in traced:
        match = None
        for candidate in weights.convs:
            if candidate.index in paired or not candidate.sources <= paired:
                continue
            if _fits(conv, candidate):
                match = candidate
                break
        if match is None:
            raise WeightsMismatchError(
                f"{source}: no ONNX conv fits {name} (shape {tuple(conv.weight.shape)}, groups {conv.groups})"
                f"{guess_hint(weights)}"
            )
        paired.add(match.index)
        pairs.append((name, conv, match))
    return pairs


def batchnorm_of(model: nn.Module) -> dict[nn.Conv2d, nn.BatchNorm2d]:
    """Map each conv to the BatchNorm that follows it (blocks hold them as ``conv`` and ``bn``)."""
    mapping = {}
    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            mapping[conv] = bn
    return mapping
