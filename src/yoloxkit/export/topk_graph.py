"""Decode + per-anchor best class + score threshold + TopK as an exportable graph, without NMS:
the final detections of an end-to-end (``-e2e``) model, whose scores need no suppression.

It behaves like :class:`yoloxkit.Detector` on an end-to-end network:

1. score = objectness * best class probability (one class per anchor, ``ArgMax``); an
   end-to-end head's objectness already includes its PSS score;
2. anchors under ``conf`` get score -1; the scores are padded with ``max_dets`` more -1 entries
   (so that any input size has at least ``max_dets`` candidates);
3. ``TopK`` (``max_dets``, largest, sorted) per image, then the boxes and class ids of the kept
   anchors are gathered;
4. outputs like the ``--nms`` graph's: ``num_dets [B,1]`` (int64), ``boxes [B,K,4]`` (xyxy,
   input pixels), ``scores [B,K]``, ``class_ids [B,K]`` (int64), zero past ``num_dets``.

Only standard operators (``TopK``, ``GatherElements``, ``Pad``, ``Where``; opset 11): no
``NonMaxSuppression`` node, so the file runs in any ONNX runtime and OpenVINO.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..infer.defaults import DEFAULT_CONF, DEFAULT_MAX_DETS
from .nms_graph import check_graph_options, select_best_class

__all__ = ["TopKGraph"]


class TopKGraph(nn.Module):
    """Wrap a YOLOX model so that its forward returns the top ``max_dets`` detections scoring at
    least ``conf`` per image, padded (see the module docstring)."""

    def __init__(self, model: nn.Module, conf: float = DEFAULT_CONF, max_dets: int = DEFAULT_MAX_DETS) -> None:
        super().__init__()
        check_graph_options(conf, max_dets, "--topk")
        self.model = model
        self.conf = float(conf)
        self.max_dets = int(max_dets)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        boxes, scores, class_ids = select_best_class(self.model(images))
        scores = torch.where(scores >= self.conf, scores, torch.full_like(scores, -1.0))
        scores = F.pad(scores, (0, self.max_dets), value=-1.0)
        top_scores, index = scores.topk(self.max_dets, dim=1, largest=True, sorted=True)
        valid = top_scores >= 0  # real scores lie in [0, 1]; -1 marks a dropped or padding slot
        top_boxes = F.pad(boxes, (0, 0, 0, self.max_dets)).gather(1, index.unsqueeze(-1).expand(-1, -1, 4))
        top_ids = F.pad(class_ids, (0, self.max_dets)).gather(1, index)
        return (
            valid.sum(dim=1, keepdim=True).to(torch.int64),
            torch.where(valid.unsqueeze(-1), top_boxes, torch.zeros_like(top_boxes)),
            torch.where(valid, top_scores, torch.zeros_like(top_scores)),
            torch.where(valid, top_ids, torch.zeros_like(top_ids)),
        )
