"""What an assigner reads: the predictions, the anchor grid and the padded targets of one batch.

The loss builds one :class:`AssignInputs` per training step (:meth:`yoloxkit.losses.FlatPredictions.
assign_inputs`) and hands it to every assigner it runs (SimOTA, the one-to-one assignment), so the
anchor grid and the split targets are worked out once per step. Boxes are ``(cx, cy, w, h)`` in
input pixels; ``B`` images, ``A`` anchors (level by level, row-major, as the model outputs them),
``C`` classes, ``G`` gt slots (padded).

Anchors come in *groups*, one per (level, anchor shape), ordered level-major: an anchor-free head
has one group per level, an anchor-based one (YOLOv3 anchors) several per level. ``shapes`` and
``strides`` are given per group. Every anchor has a size prior ``(w, h)``: its stride for an
anchor-free head, its group's anchor otherwise; boxes are coded as centre ``(raw_xy + grid) *
stride`` and size ``exp(raw_wh) * size prior``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..deprecation import warn_deprecated
from ..models.anchors import group_priors, size_priors
from ..models.head import make_grid

#: one ``(w, h)`` size prior in input pixels per group, or None (anchor-free: the stride)
AnchorSizes = tuple[tuple[float, float], ...] | None

__all__ = ["AnchorSizes", "AnchorGrid", "Predictions", "GroundTruth", "AssignInputs", "anchor_centers", "from_loose_arguments"]


def anchor_centers(
    shapes: list[tuple[int, int]],
    strides: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchor grid for feature maps of ``shapes`` (h, w) at ``strides``.

    Returns ``(grid [A, 2], stride [A], centers [A, 2])``: the cell indices (x, y), the
    stride of each anchor and the cell centres ``(grid + 0.5) * stride`` in input pixels.
    Anchors are ordered level by level, row-major, as in the model's outputs.
    """
    grid, stride = make_grid(shapes, strides, dtype, torch.device(device))
    stride = stride[:, 0]
    centers = (grid + 0.5) * stride[:, None]
    return grid, stride, centers


@dataclass(frozen=True)
class AnchorGrid:
    """The anchors of a batch's feature maps: per group ``shapes`` (h, w) and ``level_strides``
    (the stride of each group) and ``anchor_sizes`` (None when anchor-free); per anchor ``grid``
    ``[A, 2]`` (cell x, y), ``strides`` ``[A]``, ``centers`` ``[A, 2]`` and ``sizes`` ``[A, 2]``
    (the size prior (w, h) in input pixels: the group's anchor, or the stride)."""

    shapes: tuple[tuple[int, int], ...]
    level_strides: tuple[int, ...]
    grid: torch.Tensor
    strides: torch.Tensor
    centers: torch.Tensor
    sizes: torch.Tensor
    anchor_sizes: AnchorSizes = None

    @classmethod
    def build(
        cls,
        shapes: list[tuple[int, int]] | tuple[tuple[int, int], ...],
        strides: tuple[int, ...],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        anchor_sizes: AnchorSizes = None,
    ) -> "AnchorGrid":
        """The grid of feature maps ``shapes`` at ``strides`` (:func:`anchor_centers`), one of each
        per group; ``anchor_sizes`` one ``(w, h)`` per group, or None for the strides."""
        shapes = tuple((int(h), int(w)) for h, w in shapes)
        grid, anchor_strides, centers = anchor_centers(list(shapes), tuple(strides), dtype, device)
        if anchor_sizes is not None:
            anchor_sizes = tuple((float(w), float(h)) for w, h in anchor_sizes)
        sizes = size_priors(shapes, tuple(strides), anchor_sizes, dtype, grid.device)
        return cls(shapes, tuple(strides), grid, anchor_strides, centers, sizes, anchor_sizes)

    @property
    def num_anchors(self) -> int:
        return self.grid.shape[0]

    @property
    def group_starts(self) -> tuple[int, ...]:
        """The index of each group's first anchor."""
        starts, total = [], 0
        for h, w in self.shapes:
            starts.append(total)
            total += h * w
        return tuple(starts)

    @property
    def group_sizes(self) -> tuple[tuple[float, float], ...]:
        """The size prior ``(w, h)`` of each group: its anchor, or ``(stride, stride)``."""
        return group_priors(self.level_strides, self.anchor_sizes)


@dataclass(frozen=True)
class Predictions:
    """The head's predictions an assigner scores (no gradient needed): ``boxes`` ``[B, A, 4]``
    decoded, ``obj_logits`` ``[B, A]``, ``cls_logits`` ``[B, A, C]``."""

    boxes: torch.Tensor
    obj_logits: torch.Tensor
    cls_logits: torch.Tensor


@dataclass(frozen=True)
class GroundTruth:
    """Padded targets: ``boxes`` ``[B, G, 4]``, ``classes`` ``[B, G]`` (any value where padded) and
    ``valid`` ``[B, G]`` bool, False for padding rows."""

    boxes: torch.Tensor
    classes: torch.Tensor
    valid: torch.Tensor


@dataclass(frozen=True)
class AssignInputs:
    """Everything an assigner reads for one batch (module docstring)."""

    predictions: Predictions
    anchors: AnchorGrid
    targets: GroundTruth

    @classmethod
    def from_tensors(
        cls,
        pred_boxes: torch.Tensor,
        obj_logits: torch.Tensor,
        cls_logits: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_classes: torch.Tensor,
        gt_valid: torch.Tensor,
        shapes: list[tuple[int, int]],
        strides: tuple[int, ...],
        anchor_sizes: AnchorSizes = None,
    ) -> "AssignInputs":
        """The bundle of plain tensors (shapes as in :class:`Predictions` and :class:`GroundTruth`);
        the anchor grid (per group ``shapes``, ``strides``, ``anchor_sizes``) is built on
        ``pred_boxes``' device."""
        return cls(
            Predictions(pred_boxes, obj_logits, cls_logits),
            AnchorGrid.build(shapes, strides, pred_boxes.device, anchor_sizes=anchor_sizes),
            GroundTruth(gt_boxes, gt_classes, gt_valid),
        )


def from_loose_arguments(function: str, first: object, rest: tuple) -> AssignInputs:
    """``first`` if it is already an :class:`AssignInputs`; else the bundle of the eight loose
    arguments ``(first, *rest)`` of the earlier signature, with a :class:`DeprecationWarning` (once
    per ``function``)."""
    if isinstance(first, AssignInputs):
        if rest:
            raise TypeError(f"{function}: takes one AssignInputs and keyword options, got {len(rest)} more arguments")
        return first
    if len(rest) != 7:
        raise TypeError(f"{function}: expected an AssignInputs (or the 8 loose arguments of old), got {1 + len(rest)}")
    warn_deprecated(
        function,
        f"{function}(pred_boxes, obj_logits, cls_logits, gt_boxes, gt_classes, gt_valid, shapes, strides)"
        f" is deprecated; pass one yoloxkit.assign.inputs.AssignInputs (AssignInputs.from_tensors(...))",
        stacklevel=4,
    )
    return AssignInputs.from_tensors(first, *rest)  # type: ignore[arg-type]
