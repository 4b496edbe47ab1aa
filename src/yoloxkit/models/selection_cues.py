"""Selection cues of the end-to-end (NMS-free) head: where each anchor's score stands among its
neighbours, after DeFCN's 3D max filtering (Wang et al., 2021, §3.3).

The PSS branch must keep one anchor per object and silence the duplicates around it. Two
neighbouring anchors often score within a few per cent of each other, and convolutional features
alone do not say which of the two is higher. These cues do, and they cost no parameters: per
anchor, with ``c*`` its best class and ``d = σ(obj)·σ(cls_c*)`` its detector score,

1. whether ``d`` is the maximum of class ``c*`` in the anchor's 3D neighbourhood;
2. whether the anchor's best score of any class is the maximum of that neighbourhood;
3. ``d`` divided by that class-``c*`` maximum (1 at a local maximum);
4. ``log d / 5`` (the score itself, on a scale a conv reads well).

The 3D neighbourhood of an anchor is the ``3×3`` window around it on its own level, plus the
matching windows on the finer level (pooled to this level's grid) and on the coarser level
(upsampled to it). Everything is max pooling, nearest upsampling and comparisons, so it exports
to ONNX, OpenVINO and TorchScript, and needs no NMS operator. The cues are computed from
detached scores: they pass no gradient to the detector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["NUM_CUES", "max_filter_3d", "selection_cues"]

#: channels :func:`selection_cues` returns per level
NUM_CUES = 4

_LOG_SCALE = 5.0
_TINY = 1e-6


def _window_max(scores: torch.Tensor, kernel: int) -> torch.Tensor:
    # Channels-last: the same values, and on a CPU about 10x faster over 80 class maps
    # (benchmarks/bench_postprocess.py); a no-op for a model already run channels-last.
    scores = scores.contiguous(memory_format=torch.channels_last)
    return F.max_pool2d(scores, kernel, stride=1, padding=kernel // 2)


def max_filter_3d(maps: list[torch.Tensor], kernel: int = 3) -> list[torch.Tensor]:
    """Per level (finest first, ``[B, C, H, W]`` each, every level half the size of the one
    before), the maximum over a ``kernel×kernel`` window on that level and its two neighbours."""
    windows = [_window_max(scores, kernel) for scores in maps]
    out = []
    for level, window in enumerate(windows):
        best = window
        height, width = window.shape[-2:]
        if level > 0:  # the finer level, pooled onto this grid
            finer = F.max_pool2d(windows[level - 1], 2, stride=2, ceil_mode=True)
            best = torch.maximum(best, finer[..., :height, :width])
        if level + 1 < len(windows):  # the coarser level, upsampled onto this grid
            coarser = F.interpolate(windows[level + 1], size=(height, width), mode="nearest")
            best = torch.maximum(best, coarser)
        out.append(best)
    return out


@torch.no_grad()
def selection_cues(obj_logits: list[torch.Tensor], cls_logits: list[torch.Tensor]) -> list[torch.Tensor]:
    """The :data:`NUM_CUES` cue maps ``[B, NUM_CUES, H, W]`` per level (module docstring), from
    the detector's per-level objectness ``[B, 1, H, W]`` and class logits ``[B, C, H, W]``."""
    scores = [o.detach().float().sigmoid() * c.detach().float().sigmoid() for o, c in zip(obj_logits, cls_logits)]
    best = [s.max(dim=1, keepdim=True) for s in scores]  # each anchor's score d and class c*, one pass
    class_max = max_filter_3d(scores)
    any_class_max = max_filter_3d([score for score, _ in best])
    cues = []
    for (score, best_class), level_max, best_any_max in zip(best, class_max, any_class_max):
        neighbourhood = level_max.gather(1, best_class)
        cues.append(torch.cat([
            (score >= neighbourhood).to(score.dtype),
            (score >= best_any_max).to(score.dtype),
            score / neighbourhood.clamp(min=_TINY),
            torch.log(score.clamp(min=_TINY)) / _LOG_SCALE,
        ], dim=1))
    return cues
