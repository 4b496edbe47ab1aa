"""Convolutional building blocks of the YOLOX family.

Attribute names follow the official checkpoints (``conv``/``bn``, ``dconv``/``pconv``,
``conv1``..``conv3``, ``m``), so that ``state_dict`` keys load without renaming.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "make_activation",
    "ConvBnAct",
    "DepthwiseSeparableConv",
    "Bottleneck",
    "ResidualBlock",
    "SpatialPyramidPooling",
    "CSPBlock",
    "SpaceToDepthStem",
    "conv_block",
]

BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def make_activation(name: str) -> nn.Module:
    """Return the activation module called ``name`` (``silu``, ``relu`` or ``lrelu``)."""
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "lrelu":
        return nn.LeakyReLU(0.1, inplace=True)
    raise ValueError(f"unknown activation {name!r}; expected silu, relu or lrelu")


class ConvBnAct(nn.Module):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d -> activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        act: str = "silu",
    ) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DepthwiseSeparableConv(nn.Module):
    """Depthwise k×k conv followed by a pointwise 1×1 conv (both ConvBnAct)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, act: str = "silu"
    ) -> None:
        super().__init__()
        self.dconv = ConvBnAct(in_channels, in_channels, kernel_size, stride, groups=in_channels, act=act)
        self.pconv = ConvBnAct(in_channels, out_channels, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pconv(self.dconv(x))


def conv_block(depthwise: bool):
    """The 3×3 conv type used by a model: depthwise-separable for Nano, plain otherwise."""
    return DepthwiseSeparableConv if depthwise else ConvBnAct


class Bottleneck(nn.Module):
    """1×1 reduce then 3×3 conv, with an optional residual connection."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        shortcut: bool = True,
        expansion: float = 0.5,
        depthwise: bool = False,
        act: str = "silu",
    ) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvBnAct(in_channels, hidden, 1, 1, act=act)
        self.conv2 = conv_block(depthwise)(hidden, out_channels, 3, 1, act=act)
        self.use_add = shortcut and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class ResidualBlock(nn.Module):
    """Darknet-53 residual unit: 1×1 halve, 3×3 restore, add (LeakyReLU)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 2
        self.layer1 = ConvBnAct(channels, mid, 1, 1, act="lrelu")
        self.layer2 = ConvBnAct(mid, channels, 3, 1, act="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer2(self.layer1(x))


class SpatialPyramidPooling(nn.Module):
    """SPP bottleneck: 1×1 reduce, parallel max-pools (5, 9, 13), concat, 1×1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: tuple[int, ...] = (5, 9, 13),
        act: str = "silu",
    ) -> None:
        super().__init__()
        hidden = in_channels // 2
        self.conv1 = ConvBnAct(in_channels, hidden, 1, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.conv2 = ConvBnAct(hidden * (len(kernel_sizes) + 1), out_channels, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.m], dim=1))


class CSPBlock(nn.Module):
    """Cross-stage-partial block with ``n`` bottlenecks (the official CSPLayer)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n: int = 1,
        shortcut: bool = True,
        expansion: float = 0.5,
        depthwise: bool = False,
        act: str = "silu",
    ) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvBnAct(in_channels, hidden, 1, 1, act=act)
        self.conv2 = ConvBnAct(in_channels, hidden, 1, 1, act=act)
        self.conv3 = ConvBnAct(2 * hidden, out_channels, 1, 1, act=act)
        self.m = nn.Sequential(
            *(Bottleneck(hidden, hidden, shortcut, 1.0, depthwise, act=act) for _ in range(n))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same execution order as the official layer (conv1, conv2, bottlenecks), so that a
        # traced forward pass visits the convs in the order of official ONNX exports.
        x1 = self.conv1(x)
        x2 = self.conv2(x)
        return self.conv3(torch.cat((self.m(x1), x2), dim=1))


class SpaceToDepthStem(nn.Module):
    """The 'Focus' stem: 2×2 space-to-depth (YOLOX pixel order) then a conv."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, act: str = "silu"
    ) -> None:
        super().__init__()
        self.conv = ConvBnAct(in_channels * 4, out_channels, kernel_size, stride, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top_left = x[..., ::2, ::2]
        top_right = x[..., ::2, 1::2]
        bottom_left = x[..., 1::2, ::2]
        bottom_right = x[..., 1::2, 1::2]
        return self.conv(torch.cat((top_left, bottom_left, top_right, bottom_right), dim=1))
