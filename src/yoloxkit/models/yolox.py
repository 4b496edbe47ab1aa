"""The YOLOX detector module: ``backbone`` (pyramid) + ``head``, and the criterion it carries."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from ..errors import YoloxkitError
from .head_base import DetectionHead, LevelOutput

__all__ = ["YOLOX", "Criterion"]

# (per-group head outputs, targets [B, M, 5], strides) -> loss dict; an anchor-based head's
# criterion is also given ``anchor_sizes=`` (one (w, h) per group)
Criterion = Callable[[list[LevelOutput], torch.Tensor, tuple[int, ...]], dict[str, torch.Tensor]]


class YOLOX(nn.Module):
    """Backbone + neck (``self.backbone``) and head (``self.head``: the decoupled head, or the
    coupled YOLOv3 head of the roadmap's baseline).

    Eval mode returns decoded predictions ``[B, A, 5 + C]``. Train mode with
    ``targets`` ``[B, max_labels, 5]`` (class, cx, cy, w, h in input pixels; zero rows
    are padding) returns the loss dict ``total_loss, iou_loss, conf_loss, cls_loss,
    l1_loss, num_fg`` (plus ``pss_loss`` for an end-to-end model, whose criterion also gets the
    PSS logits) computed by ``self.criterion`` (attached by ``yoloxkit.build_model``
    and by the trainer; this package knows no loss of its own). The criterion is called as
    ``criterion(levels, targets, head.strides)`` (``levels``: one output per group), with the
    PSS logits as a fourth argument for an end-to-end model, and with
    ``anchor_sizes=head.anchor_sizes`` when the head is anchor-based (``anchor_sizes`` not None).
    """

    def __init__(self, backbone: nn.Module, head: DetectionHead, criterion: Optional[Criterion] = None) -> None:
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
            levels = self.head.forward_levels(features)
            anchor_sizes = getattr(self.head, "anchor_sizes", None)
            if anchor_sizes is not None:
                return self.criterion(levels, targets, self.head.strides, anchor_sizes=anchor_sizes)
            return self.criterion(levels, targets, self.head.strides)
        return self.head(features)
