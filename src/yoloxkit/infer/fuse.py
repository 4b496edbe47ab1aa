"""Folding BatchNorm into the preceding convolution for inference."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..models.blocks import ConvBnAct

__all__ = ["FusedConvAct", "fuse_model"]


class FusedConvAct(nn.Module):
    """A ``ConvBnAct`` whose BatchNorm was folded into the conv: conv (with bias) -> activation."""

    def __init__(self, conv: nn.Conv2d, act: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.act = act

    def forward(self, x):
        return self.act(self.conv(x))


def fuse_model(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy of ``model`` with every ``ConvBnAct`` fused; ``model`` is untouched.

    Outputs match the unfused model in eval mode up to float rounding; the copy is for
    inference only (it has no BatchNorm to train and other state-dict keys).
    """
    fused = copy.deepcopy(model).eval()
    for parent in list(fused.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, ConvBnAct):
                conv = fuse_conv_bn_eval(child.conv, child.bn)
                setattr(parent, child_name, FusedConvAct(conv, child.act))
    for parameter in fused.parameters():
        parameter.requires_grad_(False)
    return fused
