"""The coupled head of YOLOv3, the baseline row of the paper's roadmap (Table 2).

Per level one 3×3 conv widening the FPN map ``c -> 2c`` (BatchNorm, activation), then one 1×1
prediction conv (with bias) giving ``A·(5 + C)`` channels: for each anchor in turn ``[4 reg,
1 obj, C cls]``. Classification, objectness and regression share every feature: that is what
"coupled" means, and what the next row's decoupled head changes. The outputs are split into the
same per-(level, anchor) groups as every head's (:mod:`.anchors`), so decoding, assignment and
losses are shared.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .anchors import Anchors, YOLOV3_ANCHORS, split_anchor_channels
from .blocks import ConvBnAct
from .head_base import DetectionHead, LevelOutput

__all__ = ["CoupledHead"]


class CoupledHead(DetectionHead):
    """YOLOv3's anchor-based head on FPN maps of ``in_channels`` (Darknet-53: 128, 256, 512).

    State-dict keys: ``convs.{level}.conv/bn.*`` (the 3×3 conv) and ``preds.{level}.weight/bias``.
    ``forward_levels`` returns one ``(reg, obj_logits, cls_logits)`` per (level, anchor) group;
    ``forward`` the eval output ``[B, A_total, 5 + C]`` with sigmoid objectness and class scores.
    """

    def __init__(
        self,
        num_classes: int,
        strides: tuple[int, ...] = (8, 16, 32),
        in_channels: tuple[int, ...] = (128, 256, 512),
        act: str = "lrelu",
        anchors: Anchors = YOLOV3_ANCHORS,
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        if len(in_channels) != len(strides):
            raise ValueError(f"{len(in_channels)} input maps for {len(strides)} strides")
        self.num_classes = num_classes
        self.end_to_end = False
        anchors = self._set_groups(strides, anchors)
        self.convs = nn.ModuleList(ConvBnAct(c, 2 * c, 3, act=act) for c in in_channels)
        self.preds = nn.ModuleList(
            nn.Conv2d(2 * c, len(level) * (5 + num_classes), 1, 1, 0) for c, level in zip(in_channels, anchors)
        )
        self.initialize_biases(prior_prob)

    def initialize_biases(self, prior_prob: float = 0.01) -> None:
        """Objectness and class biases so that the initial sigmoid equals ``prior_prob``;
        regression biases 0."""
        value = -math.log((1 - prior_prob) / prior_prob)
        with torch.no_grad():
            for conv, level in zip(self.preds, self.anchors):
                bias = conv.bias.view(len(level), 5 + self.num_classes)
                bias[:, :4] = 0.0
                bias[:, 4:] = value

    def forward_levels(self, features: tuple[torch.Tensor, ...]) -> list[LevelOutput]:
        """Raw outputs (regression ``[B,4,H,W]``, objectness logits ``[B,1,H,W]``, class logits
        ``[B,C,H,W]``), one per (level, anchor) group, level-major."""
        outputs: list[LevelOutput] = []
        for k, x in enumerate(features):
            raw = self.preds[k](self.convs[k](x))
            for group in split_anchor_channels(raw, len(self.anchors[k])):
                outputs.append((group[:, :4], group[:, 4:5], group[:, 5:]))
        return outputs

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Inference output ``[B, A_total, 5 + C]`` (group by group, row-major), decoded to input
        pixels with the anchors as size priors unless ``decode_in_inference`` is False."""
        scored = [(r, o.sigmoid(), c.sigmoid()) for r, o, c in self.forward_levels(features)]
        return self.inference_output(scored)
