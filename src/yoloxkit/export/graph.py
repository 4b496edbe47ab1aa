"""The module that gets exported: the model in its inference form, with optional decode / NMS."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .nms_graph import DetectionsGraph
from .options import ExportOptions

__all__ = ["export_module"]


def export_module(model: nn.Module, options: ExportOptions) -> nn.Module:
    """A CPU float32 eval-mode copy of ``model`` whose forward gives the export's outputs.

    The default is the official interface (undecoded ``[B, A, 5+C]``); ``decode`` decodes boxes
    in the graph; ``nms`` returns padded final detections (see :mod:`.nms_graph`).
    """
    module = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    head = getattr(module, "head", None)
    if head is None or not hasattr(head, "decode_in_inference"):
        raise TypeError("export needs a yoloxkit YOLOX model (with .head.decode_in_inference)")
    head.decode_in_inference = bool(options.decode or options.nms)
    if options.nms:
        module = DetectionsGraph(module, options.conf, options.nms_iou, options.max_dets).eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module
