"""What every detection head shares: its output groups (strides, size priors), the box coding,
the criterion it carries for its model with the official ``use_l1`` switch, and the eval output.

A head's ``forward_levels`` returns one ``(reg, obj_logits, cls_logits)`` per output group
(:mod:`.anchors`); ``strides`` and ``anchor_sizes`` describe those groups, ``level_strides`` the
feature maps they come from. Box coding, the same for every head: centre ``(raw_xy + grid_xy) *
stride``, size ``exp(raw_wh) * prior``, the prior being the stride (anchor-free) or the group's
anchor ``(w, h)``. The anchor-based rows thus keep YOLOX's linear offsets rather than YOLOv3's
sigmoid ones, so that decoding and the L1 targets are shared by all heads (a choice; the paper
does not say).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import YoloxkitError
from .anchors import Anchors, check_anchors, group_anchor_sizes, group_strides, size_priors

__all__ = ["DetectionHead", "LevelOutput", "make_grid", "decode_outputs", "flatten_levels", "anchor_based"]

# Per group: (reg [B,4,H,W], obj logits [B,1,H,W], cls logits [B,C,H,W]).
LevelOutput = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def flatten_levels(levels: list[LevelOutput]) -> torch.Tensor:
    """Concatenate per-group maps into ``[B, A, 5 + C]`` (group order, row-major)."""
    maps = [torch.cat(parts, dim=1).flatten(start_dim=2) for parts in levels]
    return torch.cat(maps, dim=2).permute(0, 2, 1)


def make_grid(
    shapes: list[tuple[int, int]], strides: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor-point grid ``[A, 2]`` (x, y cell indices) and per-prediction stride ``[A, 1]``, for
    maps of ``shapes`` (h, w) at ``strides`` (per group)."""
    grids, anchor_strides = [], []
    for (h, w), stride in zip(shapes, strides):
        ys, xs = torch.meshgrid(
            torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype), indexing="ij"
        )
        grids.append(torch.stack((xs, ys), dim=2).reshape(-1, 2))
        anchor_strides.append(torch.full((h * w, 1), float(stride), device=device, dtype=dtype))
    return torch.cat(grids), torch.cat(anchor_strides)


def decode_outputs(
    outputs: torch.Tensor,
    shapes: list[tuple[int, int]],
    strides: tuple[int, ...],
    anchor_sizes: tuple[tuple[float, float], ...] | None = None,
) -> torch.Tensor:
    """Map raw regression ``(dx, dy, log w, log h)`` of ``outputs`` ``[B, A, 5 + C]`` to
    ``(cx, cy, w, h)`` in input pixels; the other channels pass through. ``shapes`` (h, w),
    ``strides`` and ``anchor_sizes`` (one ``(w, h)`` each; None: the stride is the size prior)
    are per output group."""
    grid, stride = make_grid(shapes, strides, outputs.dtype, outputs.device)
    centers = (outputs[..., :2] + grid) * stride
    if anchor_sizes is None:
        prior = stride
    else:
        prior = size_priors(shapes, strides, anchor_sizes, outputs.dtype, outputs.device)
    sizes = torch.exp(outputs[..., 2:4]) * prior
    return torch.cat([centers, sizes, outputs[..., 4:]], dim=-1)


def anchor_based(model: object) -> bool:
    """Whether ``model``'s head predicts from anchor priors (``head.anchor_sizes``, the roadmap rows
    with YOLOv3 anchors) rather than from its strides."""
    return getattr(getattr(model, "head", None), "anchor_sizes", None) is not None


class DetectionHead(nn.Module):
    """Base of the heads: no parameters of its own (so no state-dict keys).

    Subclasses call :meth:`_set_groups` in their constructor and implement ``forward_levels``.
    """

    num_classes: int
    end_to_end: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.decode_in_inference = True
        self._criterion = None  # the loss of the model that carries this head (see ``use_l1``)
        self._use_l1_request: bool | None = None  # ``use_l1`` set while no criterion is attached

    def _set_groups(self, level_strides: tuple[int, ...], anchors: Anchors | None) -> Anchors | None:
        """Set ``level_strides``, ``strides`` (per group) and ``anchor_sizes`` (None: anchor-free);
        returns the checked anchors."""
        self.level_strides = tuple(level_strides)
        if anchors is not None:
            anchors = check_anchors(anchors, len(self.level_strides))
        self.anchors = anchors
        self.strides = group_strides(self.level_strides, anchors)
        self.anchor_sizes = group_anchor_sizes(anchors)
        return anchors

    def __setattr__(self, name: str, value: object) -> None:
        if name == "criterion":  # a plain attribute even when the criterion is an nn.Module
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def criterion(self) -> Callable | None:
        """The loss of the model that carries this head (``YOLOX.criterion`` is stored here, so
        that ``use_l1``, the official switch, reaches it); None for a network without a loss."""
        return self._criterion

    @criterion.setter
    def criterion(self, criterion: Callable | None) -> None:
        self.__dict__["_criterion"] = criterion
        if criterion is not None and self._use_l1_request is not None:
            request, self.__dict__["_use_l1_request"] = self._use_l1_request, None
            self.use_l1 = request

    @property
    def use_l1(self) -> bool:
        """The official switch of the L1 term (``model.head.use_l1 = True``): the same flag as the
        criterion's ``use_l1``. Set on a head without a criterion, it is kept and handed to the
        criterion attached next; a criterion without the switch refuses ``True`` loudly."""
        if self._criterion is None:
            return bool(self._use_l1_request)
        return bool(getattr(self._criterion, "use_l1", False))

    @use_l1.setter
    def use_l1(self, value: bool) -> None:
        if value not in (True, False):
            raise ValueError(f"use_l1 must be True or False, got {value!r}")
        if self._criterion is None:
            self.__dict__["_use_l1_request"] = bool(value)
        elif hasattr(self._criterion, "use_l1"):
            self._criterion.use_l1 = bool(value)
        elif value:
            raise YoloxkitError(
                f"the model's criterion ({type(self._criterion).__name__}) has no use_l1 switch: the L1 term"
                " cannot be switched on"
            )

    def inference_output(self, scored: list[LevelOutput]) -> torch.Tensor:
        """Per-group ``(reg, obj score, cls scores)`` into the eval output ``[B, A, 5 + C]``:
        decoded to ``(cx, cy, w, h)`` in input pixels with the groups' strides and size priors,
        or raw when ``decode_in_inference`` is False (the official ONNX interface)."""
        outputs = flatten_levels(scored)
        if not self.decode_in_inference:
            return outputs
        shapes = [tuple(r.shape[-2:]) for r, _, _ in scored]
        return decode_outputs(outputs, shapes, self.strides, self.anchor_sizes)
