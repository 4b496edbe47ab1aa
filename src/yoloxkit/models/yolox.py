"""The YOLOX detector module: ``backbone`` (pyramid) + ``head``, and the criterion it carries."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from ..errors import YoloxkitError
from .head import DecoupledHead, LevelOutput

__all__ = ["YOLOX", "Criterion"]

# (per-level head outputs, targets [B, M, 5], strides) -> loss dict
Criterion = Callable[[list[LevelOutput], torch.Tensor, tuple[int, ...]], dict[str, torch.Tensor]]


class YOLOX(nn.Module):
    """Backbone + neck (``self.backbone``) and decoupled head (``self.head``).

    Eval mode returns decoded predictions ``[B, A, 5 + C]``. Train mode with
    ``targets`` ``[B, max_labels, 5]`` (class, cx, cy, w, h in input pixels; zero rows
    are padding) returns the loss dict ``total_loss, iou_loss, conf_loss, cls_loss,
    l1_loss, num_fg`` (plus ``pss_loss`` for an end-to-end model, whose criterion also gets the
    PSS logits) computed by ``self.criterion`` (attached by ``yoloxkit.build_model``
    and by the trainer; this package knows no loss of its own).
    """

    def __init__(self, backbone: nn.Module, head: DecoupledHead, criterion: Optional[Criterion] = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        if criterion is not None:
            self.criterion = criterion

    def __setattr__(self, name: str, value: object) -> None:
        if name == "criterion":  # the property below, even when the criterion is an nn.Module
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def criterion(self) -> Optional[Criterion]:
        """The loss this model computes in train mode (None: a network alone). It is kept on the
        head, so that ``model.head.use_l1 = True`` (the official switch) and
        ``model.criterion.use_l1 = True`` set one and the same flag."""
        return self.head.criterion

    @criterion.setter
    def criterion(self, criterion: Optional[Criterion]) -> None:
        self.head.criterion = criterion

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def end_to_end(self) -> bool:
        """Whether the head has the PSS branch (NMS-free inference: top-k over the final scores)."""
        return bool(getattr(self.head, "end_to_end", False))

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None):
        features = self.backbone(images)
        if self.training and targets is not None:
            if self.criterion is None:
                raise YoloxkitError(
                    "this model has no loss attached: build it with yoloxkit.build_model(), or set"
                    " model.criterion = yoloxkit.losses.YoloxLoss()"
                )
            if self.end_to_end:
                levels, pss = self.head.forward_with_pss(features)
                return self.criterion(levels, targets, self.head.strides, pss)
            return self.criterion(self.head.forward_levels(features), targets, self.head.strides)
        return self.head(features)
