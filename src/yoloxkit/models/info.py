"""Model size figures: parameter count and GFLOPs, counted the official way."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["count_parameters", "count_macs", "count_gflops"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, size: tuple[int, int]) -> int:
    """Multiply-accumulates of one eval forward at ``size`` (h, w), counted as the thop release
    the official YOLOX numbers were made with: each conv output element costs
    ``in/groups * kh * kw (+1 with bias)``, each BatchNorm output element 2, each
    ``nn.LeakyReLU`` output element 1 (thop registers ``count_relu`` for LeakyReLU, which adds
    the element count); ReLU, SiLU, pooling and nearest upsampling are free (thop has no hook
    for them, or a zero one). Without the LeakyReLU term yolox-darknet53 counts 185.08 GFLOPs,
    not the paper's 185.3; the SiLU models are unaffected."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups * kernel + (module.bias is not None))

    def bn_hook(_module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += 2 * output.numel()

    def leaky_relu_hook(_module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel()

    hooks = {nn.Conv2d: conv_hook, nn.BatchNorm2d: bn_hook, nn.LeakyReLU: leaky_relu_hook}
    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        for kind, hook in hooks.items()
        if isinstance(m, kind)
    ]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, *size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def count_gflops(model: nn.Module, size: int | tuple[int, int], probe: int = 64) -> float:
    """GFLOPs at ``size`` as the official ``get_model_info`` reports them: the MAC count on a
    ``probe``×``probe`` input, scaled by area to ``size``, times 2."""
    h, w = (size, size) if isinstance(size, int) else size
    return count_macs(model, (probe, probe)) / 1e9 * (h * w) / (probe * probe) * 2
