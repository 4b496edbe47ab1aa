"""Builders for the reference implementation (pixeltable-yolox 0.4.3) used by parity tests."""

from __future__ import annotations

import torch
from torch import nn

from yoloxkit.models import get_spec


def build_reference(name: str, num_classes: int = 80) -> nn.Module:
    """The reference model matching yoloxkit's ``name``, built as the official exps do."""
    from yolox.models import YoloFpn, YoloPafpn, YoloxHead, YoloxModule

    spec = get_spec(name)
    if spec.darknet:
        backbone = YoloFpn()
        head = YoloxHead(num_classes, 1.0, in_channels=[128, 256, 512], act="lrelu")
    else:
        in_channels = [256, 512, 1024]
        backbone = YoloPafpn(spec.depth, spec.width, in_channels=in_channels, depthwise=spec.depthwise, act=spec.act)
        head = YoloxHead(num_classes, spec.width, in_channels=in_channels, depthwise=spec.depthwise, act=spec.act)
    model = YoloxModule(backbone, head)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-3
            m.momentum = 0.03
    model.head.initialize_biases(1e-2)
    return model


def randomize(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Give ``model`` random weights and BatchNorm statistics; return its state dict."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) / fan_in**0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(1 + 0.2 * torch.randn(n, generator=gen))
                module.bias.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
        # Keep the box regression small so that exp() in the decode stays finite.
        for conv in model.head.reg_preds:
            conv.weight.mul_(1e-3)
            conv.bias.mul_(1e-1)
    return {k: v.clone() for k, v in model.state_dict().items()}
