"""Backbones: CSPDarknet (YOLOX-Nano..X) and Darknet-53 (the YOLOv3 baseline)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import CSPBlock, ConvBnAct, ResidualBlock, SpaceToDepthStem, SpatialPyramidPooling, conv_block

__all__ = ["CSPDarknet", "Darknet53"]

STAGES = ("stem", "dark2", "dark3", "dark4", "dark5")


def _run_stages(backbone: nn.Module, x: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Run the ``STAGES`` of ``backbone`` in order; return the outputs of the stages in ``names``."""
    features = {}
    for stage in STAGES:
        x = getattr(backbone, stage)(x)
        features[stage] = x
    return {name: features[name] for name in names}


class CSPDarknet(nn.Module):
    """CSPDarknet scaled by ``depth`` (bottleneck count) and ``width`` (channels)."""

    def __init__(
        self,
        depth: float,
        width: float,
        out_features: tuple[str, ...] = ("dark3", "dark4", "dark5"),
        depthwise: bool = False,
        act: str = "silu",
    ) -> None:
        super().__init__()
        self.out_features = tuple(out_features)
        Conv = conv_block(depthwise)
        c = int(width * 64)
        n = max(round(depth * 3), 1)
        self.stem = SpaceToDepthStem(3, c, kernel_size=3, act=act)
        self.dark2 = nn.Sequential(
            Conv(c, c * 2, 3, 2, act=act), CSPBlock(c * 2, c * 2, n=n, depthwise=depthwise, act=act)
        )
        self.dark3 = nn.Sequential(
            Conv(c * 2, c * 4, 3, 2, act=act), CSPBlock(c * 4, c * 4, n=n * 3, depthwise=depthwise, act=act)
        )
        self.dark4 = nn.Sequential(
            Conv(c * 4, c * 8, 3, 2, act=act), CSPBlock(c * 8, c * 8, n=n * 3, depthwise=depthwise, act=act)
        )
        self.dark5 = nn.Sequential(
            Conv(c * 8, c * 16, 3, 2, act=act),
            SpatialPyramidPooling(c * 16, c * 16, act=act),
            CSPBlock(c * 16, c * 16, n=n, shortcut=False, depthwise=depthwise, act=act),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return _run_stages(self, x, self.out_features)


class Darknet53(nn.Module):
    """Darknet-53 with the SPP block on dark5, LeakyReLU throughout (YOLOv3 baseline)."""

    blocks_per_stage = {21: (1, 2, 2, 1), 53: (2, 8, 8, 4)}

    def __init__(
        self,
        depth: int = 53,
        in_channels: int = 3,
        stem_out_channels: int = 32,
        out_features: tuple[str, ...] = ("dark3", "dark4", "dark5"),
    ) -> None:
        super().__init__()
        if depth not in self.blocks_per_stage:
            raise ValueError(f"Darknet depth must be 21 or 53, got {depth}")
        blocks = self.blocks_per_stage[depth]
        self.out_features = tuple(out_features)
        c = stem_out_channels
        self.stem = nn.Sequential(
            ConvBnAct(in_channels, c, 3, 1, act="lrelu"), *self._stage(c, num_blocks=1, stride=2)
        )
        c *= 2
        self.dark2 = nn.Sequential(*self._stage(c, blocks[0], stride=2))
        c *= 2
        self.dark3 = nn.Sequential(*self._stage(c, blocks[1], stride=2))
        c *= 2
        self.dark4 = nn.Sequential(*self._stage(c, blocks[2], stride=2))
        c *= 2
        self.dark5 = nn.Sequential(*self._stage(c, blocks[3], stride=2), *self._spp_block(c, c * 2))

    @staticmethod
    def _stage(in_channels: int, num_blocks: int, stride: int) -> list[nn.Module]:
        out = in_channels * 2
        return [ConvBnAct(in_channels, out, 3, stride, act="lrelu")] + [
            ResidualBlock(out) for _ in range(num_blocks)
        ]

    @staticmethod
    def _spp_block(mid: int, wide: int) -> list[nn.Module]:
        return [
            ConvBnAct(wide, mid, 1, 1, act="lrelu"),
            ConvBnAct(mid, wide, 3, 1, act="lrelu"),
            SpatialPyramidPooling(wide, mid, act="lrelu"),
            ConvBnAct(mid, wide, 3, 1, act="lrelu"),
            ConvBnAct(wide, mid, 1, 1, act="lrelu"),
        ]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return _run_stages(self, x, self.out_features)
