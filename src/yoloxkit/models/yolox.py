"""The YOLOX detector module: ``backbone`` (pyramid) + ``head``."""

from __future__ import annotations

import torch
from torch import nn

from .head import DecoupledHead

__all__ = ["YOLOX"]


class YOLOX(nn.Module):
    """Backbone + neck (``self.backbone``) and decoupled head (``self.head``).

    Eval mode returns decoded predictions ``[B, A, 5 + C]``. Train mode with
    ``targets`` ``[B, max_labels, 5]`` (class, cx, cy, w, h in input pixels; zero rows
    are padding) returns the loss dict ``total_loss, iou_loss, conf_loss, cls_loss,
    l1_loss, num_fg``.
    """

    def __init__(self, backbone: nn.Module, head: DecoupledHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None):
        features = self.backbone(images)
        if self.training and targets is not None:
            from ..losses import yolox_loss

            return yolox_loss(self.head.forward_levels(features), targets, self.head.strides, self.head.use_l1)
        return self.head(features)
