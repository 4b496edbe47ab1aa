"""Decode + per-anchor best class + class-aware NMS as an exportable graph.

The NMS step is the standard ONNX ``NonMaxSuppression`` operator, so the exported file runs in
any ONNX runtime (and OpenVINO) without custom ops. It behaves like :class:`yoloxkit.Detector`:

1. score = objectness * best class probability (one class per anchor, ``ArgMax``);
2. boxes of different classes are moved apart by ``class_id * (max coordinate + 1)`` (the largest
   coordinate of the image's boxes that pass ``conf``) so that a single-class NMS becomes
   class-aware (the same trick as ``torchvision.ops.batched_nms``);
3. ``NonMaxSuppression`` keeping ``score >= conf``, ``iou_threshold=nms_iou`` and at most
   ``max_dets`` boxes per image;
4. the kept boxes are sorted by score per image and scattered into fixed-size outputs
   ``num_dets [B,1]``, ``boxes [B,K,4]`` (xyxy, input pixels), ``scores [B,K]``,
   ``class_ids [B,K]`` (int64), zero past ``num_dets``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..assign.geometry import cxcywh_to_xyxy
from ..infer.defaults import DEFAULT_CONF, DEFAULT_MAX_DETS, DEFAULT_NMS

__all__ = [
    "NMS_OUTPUT_NAMES", "DetectionsGraph", "check_graph_options", "non_max_suppression", "select_best_class",
]

NMS_OUTPUT_NAMES = ("num_dets", "boxes", "scores", "class_ids")


def _nms_eager(
    boxes: torch.Tensor, scores: torch.Tensor, max_output: int, iou_threshold: float, score_threshold: float
) -> torch.Tensor:
    """What ONNX ``NonMaxSuppression`` computes for one class, with torchvision (traceable)."""
    from torchvision.ops import batched_nms  # imported on use: it takes ~1 s

    batch, _, num = scores.shape
    flat_scores = scores[:, 0, :].reshape(-1)
    flat_boxes = boxes.reshape(-1, 4)
    batch_index = torch.arange(batch, device=boxes.device).repeat_interleave(num)
    keep = torch.nonzero(flat_scores > score_threshold).flatten()
    kept = keep[batched_nms(flat_boxes[keep], flat_scores[keep], batch_index[keep], iou_threshold)]
    kept_batch = batch_index[kept]
    # batched_nms returns kept boxes by decreasing score; keep the first max_output per image.
    order = torch.argsort(kept_batch, stable=True)
    kept, kept_batch = kept[order], kept_batch[order]
    within = _rank_within_group(kept_batch, batch) < max_output
    kept, kept_batch = kept[within], kept_batch[within]
    return torch.stack([kept_batch, torch.zeros_like(kept_batch), kept - kept_batch * num], dim=1)


class _NonMaxSuppressionOp(torch.autograd.Function):
    """Exported as the ONNX ``NonMaxSuppression`` operator; runs :func:`_nms_eager` otherwise."""

    @staticmethod
    def forward(ctx, boxes, scores, max_output, iou_threshold, score_threshold):  # noqa: D102
        return _nms_eager(boxes, scores, int(max_output), float(iou_threshold), float(score_threshold))

    @staticmethod
    def symbolic(g, boxes, scores, max_output, iou_threshold, score_threshold):  # noqa: D102
        return g.op(
            "NonMaxSuppression", boxes, scores, max_output, iou_threshold, score_threshold, center_point_box_i=0
        )


def non_max_suppression(
    boxes: torch.Tensor, scores: torch.Tensor, max_output: int, iou_threshold: float, score_threshold: float
) -> torch.Tensor:
    """Single-class NMS: ``boxes [B,N,4]`` xyxy, ``scores [B,1,N]`` -> selected ``[M,3]`` rows
    ``(batch, 0, index)``, ``max_output`` at most per image, by decreasing score. Becomes the ONNX
    ``NonMaxSuppression`` operator under ``torch.onnx.export``; torchvision ops otherwise (so it
    also traces to TorchScript)."""
    if not torch.onnx.is_in_onnx_export():
        return _nms_eager(boxes, scores, max_output, iou_threshold, score_threshold)
    return _NonMaxSuppressionOp.apply(
        boxes,
        scores,
        torch.tensor([max_output], dtype=torch.int64),
        torch.tensor([iou_threshold], dtype=torch.float32),
        torch.tensor([score_threshold], dtype=torch.float32),
    )


def check_graph_options(conf: float, max_dets: int, max_dets_option: str) -> None:
    """ValueError naming the export option for a ``conf`` outside [0, 1] or a ``max_dets`` < 1."""
    if not 0.0 <= conf <= 1.0:
        raise ValueError(f"--conf must be in [0, 1], got {conf}")
    if max_dets < 1:
        raise ValueError(f"{max_dets_option} must be >= 1, got {max_dets}")


def select_best_class(decoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From decoded ``[B, A, 5 + C]``: xyxy boxes ``[B,A,4]``, scores ``obj * best cls`` ``[B,A]``
    and best class ids ``[B,A]`` (int64)."""
    boxes = cxcywh_to_xyxy(decoded[..., :4])
    class_scores, class_ids = decoded[..., 5:].max(dim=-1)
    return boxes, decoded[..., 4] * class_scores, class_ids


def _rank_within_group(groups: torch.Tensor, num_groups: torch.Tensor | int) -> torch.Tensor:
    """Position of each element inside its group, for ``groups`` sorted ascending."""
    group_range = torch.arange(num_groups, device=groups.device)
    counts = (groups.unsqueeze(1) == group_range.unsqueeze(0)).sum(dim=0)
    starts = torch.cumsum(counts, dim=0) - counts
    return torch.arange(groups.shape[0], device=groups.device) - starts[groups]


class DetectionsGraph(nn.Module):
    """Wrap a YOLOX model so that its forward returns padded final detections (see module doc)."""

    def __init__(self, model: nn.Module, conf: float = DEFAULT_CONF, nms_iou: float = DEFAULT_NMS, max_dets: int = DEFAULT_MAX_DETS) -> None:
        super().__init__()
        check_graph_options(conf, max_dets, "--max-dets")
        if not 0.0 <= nms_iou <= 1.0:
            raise ValueError(f"--nms-iou must be in [0, 1], got {nms_iou}")
        self.model = model
        self.conf = float(conf)
        self.nms_iou = float(nms_iou)
        self.max_dets = int(max_dets)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        decoded = self.model(images)
        batch, anchors = decoded.shape[0], decoded.shape[1]
        boxes, scores, class_ids = select_best_class(decoded)
        # Like batched_nms on each image's candidates: offset by the largest candidate coordinate.
        candidates = (scores >= self.conf).unsqueeze(-1)
        max_coordinate = torch.where(candidates, boxes, torch.zeros_like(boxes)).amax(dim=(1, 2), keepdim=True)
        offsets = class_ids.to(boxes.dtype).unsqueeze(-1) * (max_coordinate + 1)
        # NonMaxSuppression keeps score > threshold; the float32 just below conf keeps score >= conf.
        threshold = float(np.nextafter(np.float32(self.conf), np.float32(0)))
        selected = non_max_suppression(boxes + offsets, scores.unsqueeze(1), self.max_dets, self.nms_iou, threshold)
        flat_index = selected[:, 0] * anchors + selected[:, 2]
        kept_batch = selected[:, 0]
        kept_scores = scores.reshape(-1)[flat_index]
        # Sort by image, then by decreasing score (scores lie in [0, 1]).
        order = torch.argsort(kept_batch.to(scores.dtype) * 2 + (1 - kept_scores))
        flat_index, kept_batch, kept_scores = flat_index[order], kept_batch[order], kept_scores[order]
        slot = kept_batch * self.max_dets + _rank_within_group(kept_batch, batch)

        slots = batch * self.max_dets
        out_boxes = torch.zeros(slots, 4, dtype=boxes.dtype, device=boxes.device)
        out_boxes = out_boxes.index_put((slot,), boxes.reshape(-1, 4)[flat_index])
        out_scores = torch.zeros(slots, dtype=scores.dtype, device=scores.device)
        out_scores = out_scores.index_put((slot,), kept_scores)
        out_ids = torch.zeros(slots, dtype=torch.int64, device=class_ids.device)
        out_ids = out_ids.index_put((slot,), class_ids.reshape(-1)[flat_index])
        num_dets = (kept_batch.unsqueeze(1) == torch.arange(batch, device=images.device).unsqueeze(0)).sum(0)
        return (
            num_dets.reshape(-1, 1),
            out_boxes.reshape(-1, self.max_dets, 4),
            out_scores.reshape(-1, self.max_dets),
            out_ids.reshape(-1, self.max_dets),
        )
