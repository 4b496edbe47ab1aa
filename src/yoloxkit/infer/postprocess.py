"""Post-processing of decoded YOLOX predictions: score, confidence filter, class-aware NMS.

Input is the eval-mode model output ``[B, A, 5 + C]`` (``cx, cy, w, h`` in input pixels,
sigmoid objectness, sigmoid class scores). Each anchor keeps its best class, scored
``objectness * class probability``; anchors under ``conf`` are dropped; the rest go through
class-aware NMS (:func:`torchvision.ops.batched_nms`) and are mapped back to image pixels.
Everything is tensor operations: no Python loop over boxes. End-to-end (NMS-free) networks use
:mod:`.topk` instead (the same output, no NMS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .defaults import DEFAULT_CONF, DEFAULT_NMS

__all__ = ["Candidates", "score_anchors", "select_candidates", "class_aware_nms", "to_image_pixels", "postprocess"]


@dataclass
class Candidates:
    """Anchors that passed the confidence filter, flattened over the batch."""

    batch_index: torch.Tensor  # [K] int64, which image each row belongs to
    boxes: torch.Tensor  # [K, 4] xyxy in input pixels
    scores: torch.Tensor  # [K] objectness * best class probability
    class_ids: torch.Tensor  # [K] int64


def score_anchors(
    predictions: torch.Tensor, conf: float, classes: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best class per anchor: ``(scores [B, A], class_ids [B, A], keep [B, A])`` with score =
    obj * cls and ``keep`` marking ``score >= conf`` (and a class in ``classes``)."""
    if predictions.ndim != 3 or predictions.shape[-1] < 6:
        raise ValueError(f"predictions must be [B, A, 5 + C], got {tuple(predictions.shape)}")
    class_prob, class_ids = predictions[..., 5:].max(dim=-1)
    scores = predictions[..., 4] * class_prob
    keep = scores >= conf
    if classes is not None:
        wanted = torch.as_tensor(list(classes), dtype=class_ids.dtype, device=class_ids.device)
        keep &= torch.isin(class_ids, wanted)
    return scores, class_ids, keep


def select_candidates(
    predictions: torch.Tensor, conf: float, classes: Sequence[int] | None = None
) -> Candidates:
    """Best class per anchor, score = obj * cls, keep ``score >= conf`` (and ``classes``)."""
    scores, class_ids, keep = score_anchors(predictions, conf, classes)
    batch_index, anchor_index = keep.nonzero(as_tuple=True)
    from torchvision.ops import box_convert  # torchvision takes ~1 s to import: only when detecting

    boxes = box_convert(predictions[batch_index, anchor_index, :4], in_fmt="cxcywh", out_fmt="xyxy")
    return Candidates(batch_index, boxes, scores[batch_index, anchor_index], class_ids[batch_index, anchor_index])


def class_aware_nms(boxes: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor, iou: float) -> torch.Tensor:
    """Indices kept by NMS run separately per class, sorted by decreasing score."""
    from torchvision.ops import batched_nms

    return batched_nms(boxes.float(), scores.float(), class_ids, iou)


def to_image_pixels(boxes: torch.Tensor, ratio: float, height: int, width: int) -> torch.Tensor:
    """Divide letterboxed-input boxes by the resize ``ratio`` and clip them to the image."""
    boxes = boxes / ratio
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return boxes


def postprocess(
    predictions: torch.Tensor,
    ratios: Sequence[float],
    image_sizes: Sequence[tuple[int, int]],
    conf: float = DEFAULT_CONF,
    nms: float = DEFAULT_NMS,
    classes: Sequence[int] | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Turn a batch of decoded predictions into per-image ``(boxes, scores, class_ids)``.

    ``boxes`` are float32 ``[N, 4]`` xyxy in original-image pixels (clipped), ``scores``
    float32 ``[N]`` and ``class_ids`` int64 ``[N]``, sorted by decreasing score.
    ``image_sizes`` holds each original image's ``(height, width)``.
    """
    candidates = select_candidates(predictions, conf, classes)
    results = []
    # NMS runs per image (a loop over images, not boxes) so that an image's detections do not
    # depend on the other images in its batch.
    counts = torch.bincount(candidates.batch_index, minlength=len(ratios)).tolist()
    offsets = np.concatenate([[0], np.cumsum(counts)]).tolist()
    for index, (height, width) in enumerate(image_sizes):
        rows = slice(offsets[index], offsets[index + 1])
        boxes, scores, class_ids = candidates.boxes[rows], candidates.scores[rows], candidates.class_ids[rows]
        keep = class_aware_nms(boxes, scores, class_ids, nms)
        boxes = to_image_pixels(boxes[keep], float(ratios[index]), int(height), int(width))
        results.append(
            (
                boxes.float().cpu().numpy(),
                scores[keep].float().cpu().numpy(),
                class_ids[keep].to(torch.int64).cpu().numpy(),
            )
        )
    return results
