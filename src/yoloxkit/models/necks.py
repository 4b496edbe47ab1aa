"""Feature pyramids: PAFPN over CSPDarknet, FPN over Darknet-53.

Both keep the backbone as the attribute ``backbone`` (official key prefix
``backbone.backbone.``) and return three maps at strides 8, 16, 32.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import CSPDarknet, Darknet53
from .blocks import CSPBlock, ConvBnAct, conv_block

__all__ = ["PAFPN", "FPN"]

FeatureMaps = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class PAFPN(nn.Module):
    """Top-down then bottom-up path aggregation over dark3/dark4/dark5."""

    def __init__(
        self,
        depth: float = 1.0,
        width: float = 1.0,
        in_features: tuple[str, ...] = ("dark3", "dark4", "dark5"),
        in_channels: tuple[int, int, int] = (256, 512, 1024),
        depthwise: bool = False,
        act: str = "silu",
    ) -> None:
        super().__init__()
        self.in_features = tuple(in_features)
        self.backbone = CSPDarknet(depth, width, out_features=self.in_features, depthwise=depthwise, act=act)
        Conv = conv_block(depthwise)
        c3, c4, c5 = (int(c * width) for c in in_channels)
        n = round(3 * depth)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = ConvBnAct(c5, c4, 1, 1, act=act)
        self.C3_p4 = CSPBlock(2 * c4, c4, n, False, depthwise=depthwise, act=act)
        self.reduce_conv1 = ConvBnAct(c4, c3, 1, 1, act=act)
        self.C3_p3 = CSPBlock(2 * c3, c3, n, False, depthwise=depthwise, act=act)
        self.bu_conv2 = Conv(c3, c3, 3, 2, act=act)
        self.C3_n3 = CSPBlock(2 * c3, c4, n, False, depthwise=depthwise, act=act)
        self.bu_conv1 = Conv(c4, c4, 3, 2, act=act)
        self.C3_n4 = CSPBlock(2 * c4, c5, n, False, depthwise=depthwise, act=act)

    def forward(self, images: torch.Tensor) -> FeatureMaps:
        features = self.backbone(images)
        x2, x1, x0 = (features[name] for name in self.in_features)
        lateral5 = self.lateral_conv0(x0)
        top4 = self.C3_p4(torch.cat([self.upsample(lateral5), x1], 1))
        lateral4 = self.reduce_conv1(top4)
        out3 = self.C3_p3(torch.cat([self.upsample(lateral4), x2], 1))
        out4 = self.C3_n3(torch.cat([self.bu_conv2(out3), lateral4], 1))
        out5 = self.C3_n4(torch.cat([self.bu_conv1(out4), lateral5], 1))
        return out3, out4, out5


class FPN(nn.Module):
    """YOLOv3-style top-down FPN over Darknet-53; outputs 128/256/512 channels."""

    def __init__(self, depth: int = 53, in_features: tuple[str, ...] = ("dark3", "dark4", "dark5")) -> None:
        super().__init__()
        self.in_features = tuple(in_features)
        self.backbone = Darknet53(depth, out_features=self.in_features)
        self.out1_cbl = ConvBnAct(512, 256, 1, act="lrelu")
        self.out1 = self._embedding((256, 512), 512 + 256)
        self.out2_cbl = ConvBnAct(256, 128, 1, act="lrelu")
        self.out2 = self._embedding((128, 256), 256 + 128)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    @staticmethod
    def _embedding(filters: tuple[int, int], in_filters: int) -> nn.Sequential:
        narrow, wide = filters
        return nn.Sequential(
            ConvBnAct(in_filters, narrow, 1, act="lrelu"),
            ConvBnAct(narrow, wide, 3, act="lrelu"),
            ConvBnAct(wide, narrow, 1, act="lrelu"),
            ConvBnAct(narrow, wide, 3, act="lrelu"),
            ConvBnAct(wide, narrow, 1, act="lrelu"),
        )

    def forward(self, images: torch.Tensor) -> FeatureMaps:
        features = self.backbone(images)
        x2, x1, x0 = (features[name] for name in self.in_features)
        out4 = self.out1(torch.cat([self.upsample(self.out1_cbl(x0)), x1], 1))
        out3 = self.out2(torch.cat([self.upsample(self.out2_cbl(out4)), x2], 1))
        return out3, out4, x0
