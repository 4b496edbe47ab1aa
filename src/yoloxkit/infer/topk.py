"""NMS-free post-processing for end-to-end (``-e2e``) YOLOX networks: best class, score
threshold and the top ``max_dets`` per image, with no suppression of overlapping boxes.

Input is the eval-mode model output ``[B, A, 5 + C]`` (as for :mod:`.postprocess`); an
end-to-end head's objectness channel already holds ``σ(obj)·σ(pss)``, so ``obj * best cls`` is
the final score. The whole batch goes through one ``topk`` (batched tensor ops, no loop over
boxes); the result per image is the same ``(boxes, scores, class_ids)`` as
:func:`~.postprocess.postprocess`, sorted by decreasing score, boxes in image pixels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .defaults import DEFAULT_CONF, DEFAULT_MAX_DETS
from .postprocess import score_anchors, to_image_pixels

__all__ = ["DEFAULT_MAX_DETS", "select_topk", "topk_postprocess"]


def select_topk(
    predictions: torch.Tensor, conf: float, max_dets: int = DEFAULT_MAX_DETS, classes: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image, the ``max_dets`` best anchors with ``score >= conf`` (and a class in ``classes``).

    Returns ``boxes [B, K, 4]`` (xyxy, input pixels), ``scores [B, K]``, ``class_ids [B, K]``
    (int64) and ``valid [B, K]`` (bool), ``K = min(max_dets, A)``, each row by decreasing score;
    rows past an image's count of passing anchors are not ``valid``.
    """
    if int(max_dets) < 1:
        raise ValueError(f"max_dets must be >= 1, got {max_dets}")
    scores, class_ids, keep = score_anchors(predictions, conf, classes)
    masked = torch.where(keep, scores, torch.full_like(scores, -float("inf")))
    top_scores, index = masked.topk(min(int(max_dets), masked.shape[1]), dim=1, sorted=True)
    valid = torch.isfinite(top_scores)
    centers = predictions[..., :4].gather(1, index.unsqueeze(-1).expand(-1, -1, 4))
    boxes = torch.cat([centers[..., :2] - centers[..., 2:] / 2, centers[..., :2] + centers[..., 2:] / 2], dim=-1)
    return boxes, top_scores, class_ids.gather(1, index), valid


def topk_postprocess(
    predictions: torch.Tensor,
    ratios: Sequence[float],
    image_sizes: Sequence[tuple[int, int]],
    conf: float = DEFAULT_CONF,
    max_dets: int = DEFAULT_MAX_DETS,
    classes: Sequence[int] | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per-image ``(boxes, scores, class_ids)`` of the top ``max_dets`` anchors scoring at least
    ``conf`` (in ``classes``), no NMS: overlapping boxes all stay.

    ``boxes`` are float32 ``[N, 4]`` xyxy in original-image pixels (clipped), ``scores``
    float32 ``[N]``, ``class_ids`` int64 ``[N]``, ``N <= max_dets``, sorted by decreasing score.
    ``image_sizes`` holds each original image's ``(height, width)``.
    """
    boxes, scores, class_ids, valid = select_topk(predictions, conf, max_dets, classes)
    counts = valid.sum(dim=1).tolist()  # valid rows come first: topk sorts them before the -inf ones
    boxes, scores, class_ids = boxes.float().cpu(), scores.float().cpu(), class_ids.to(torch.int64).cpu()
    results = []
    for index, ((height, width), count) in enumerate(zip(image_sizes, counts)):
        kept = to_image_pixels(boxes[index, :count], float(ratios[index]), int(height), int(width))
        results.append((kept.numpy(), scores[index, :count].numpy(), class_ids[index, :count].numpy()))
    return results
