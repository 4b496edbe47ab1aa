"""Anchor boxes of the anchor-based heads (the YOLOv3 rows of the paper's roadmap, Table 2).

An anchor-based head predicts ``A`` boxes per location. Its outputs are organised in *groups*,
one per (level, anchor), ordered level-major then anchor: level 0 anchor 0, level 0 anchor 1, ...
Each group is one ``[B, K, H, W]`` map, exactly like a level of an anchor-free head, which has one
group per level. Every prediction has a *size prior*: its stride (anchor-free) or its anchor's
``(w, h)`` in input pixels; boxes decode as ``size = exp(raw_wh) * prior`` either way.
"""

from __future__ import annotations

import torch

__all__ = [
    "Anchors",
    "YOLOV3_ANCHORS",
    "check_anchors",
    "group_strides",
    "group_anchor_sizes",
    "split_anchor_channels",
    "group_priors",
    "size_priors",
]

#: per level, one ``(w, h)`` in input pixels per anchor
Anchors = tuple[tuple[tuple[float, float], ...], ...]

#: YOLOv3's COCO anchors (input pixels) at strides 8, 16 and 32, three per level
YOLOV3_ANCHORS: Anchors = (
    ((10, 13), (16, 30), (33, 23)),
    ((30, 61), (62, 45), (59, 119)),
    ((116, 90), (156, 198), (373, 326)),
)


def check_anchors(anchors: Anchors, num_levels: int) -> Anchors:
    """``anchors`` as nested tuples, after checking one non-empty tuple of positive ``(w, h)``
    pairs per level; raises ValueError otherwise."""
    levels = tuple(tuple((float(w), float(h)) for w, h in level) for level in anchors)
    if len(levels) != num_levels or any(not level for level in levels):
        raise ValueError(f"anchors need one non-empty tuple of (w, h) per level ({num_levels} levels), got {anchors!r}")
    if any(w <= 0 or h <= 0 for level in levels for w, h in level):
        raise ValueError(f"anchor sizes must be positive, got {anchors!r}")
    return levels


def group_strides(level_strides: tuple[int, ...], anchors: Anchors | None = None) -> tuple[int, ...]:
    """The stride of every output group: ``level_strides`` itself without anchors, else each
    level's stride once per anchor of that level (``(8, 8, 8, 16, ...)``)."""
    if anchors is None:
        return tuple(level_strides)
    return tuple(stride for stride, level in zip(level_strides, anchors) for _ in level)


def group_anchor_sizes(anchors: Anchors | None) -> tuple[tuple[float, float], ...] | None:
    """One ``(w, h)`` per output group (level-major, then anchor), or None without anchors."""
    if anchors is None:
        return None
    return tuple((float(w), float(h)) for level in anchors for w, h in level)


def split_anchor_channels(x: torch.Tensor, num_anchors: int) -> tuple[torch.Tensor, ...]:
    """``[B, A*K, H, W]`` laid out anchor-major (anchor 0's K channels first) into ``A`` maps
    ``[B, K, H, W]``."""
    return torch.chunk(x, num_anchors, dim=1) if num_anchors > 1 else (x,)


def group_priors(
    strides: tuple[int, ...], anchor_sizes: tuple[tuple[float, float], ...] | None = None
) -> tuple[tuple[float, float], ...]:
    """The size prior ``(w, h)`` of every output group: its anchor, or its stride twice without
    ``anchor_sizes`` (``strides`` and ``anchor_sizes`` per group)."""
    if anchor_sizes is not None:
        return tuple((float(w), float(h)) for w, h in anchor_sizes)
    return tuple((float(s), float(s)) for s in strides)


def size_priors(
    shapes: list[tuple[int, int]] | tuple[tuple[int, int], ...],
    strides: tuple[int, ...],
    anchor_sizes: tuple[tuple[float, float], ...] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The size prior ``(w, h)`` of every prediction, ``[A, 2]`` in output order (group by group,
    row-major): the group's stride twice without ``anchor_sizes``, else the group's anchor.
    ``shapes`` ``(h, w)``, ``strides`` and ``anchor_sizes`` are per group."""
    if anchor_sizes is not None and len(anchor_sizes) != len(shapes):
        raise ValueError(f"{len(anchor_sizes)} anchor sizes for {len(shapes)} output groups")
    priors = group_priors(strides, anchor_sizes)
    counts = torch.tensor([h * w for h, w in shapes], device=device)
    table = torch.tensor(priors, dtype=dtype, device=device).reshape(-1, 2)
    return table.repeat_interleave(counts, dim=0)
