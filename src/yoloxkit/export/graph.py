"""The module that gets exported: the model in its inference form, with optional decode / NMS /
NMS-free top-k."""

from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Iterator

import torch
from torch import nn

from ..weights import export_metadata
from .nms_graph import DetectionsGraph
from .options import ExportOptions
from .topk_graph import TopKGraph

__all__ = ["export_module", "export_entries", "quiet_tracing"]

# What torch says while tracing and exporting that no user can act on, by category and message:
# the tracer's notes on values it records as constants (the thresholds of an --nms graph), its
# constant folding of the top-k graph's slices, and the deprecation notices of torch.jit and of
# the TorchScript-based ONNX exporter, which the export uses on purpose (dynamo=False).
_TRACING_NOTES = (
    (torch.jit.TracerWarning, ""),
    (UserWarning, "Constant folding - Only steps=1 can be constant folded"),
    (FutureWarning, r"`torch\.jit\.\w+` is deprecated"),
    (DeprecationWarning, "You are using the legacy TorchScript-based ONNX export"),
    (DeprecationWarning, "The feature will be removed"),
)


@contextlib.contextmanager
def quiet_tracing() -> Iterator[None]:
    """Ignore, inside the block, the warnings of :data:`_TRACING_NOTES` (and nothing else)."""
    with warnings.catch_warnings():
        for category, message in _TRACING_NOTES:
            warnings.filterwarnings("ignore", message, category)
        yield


def export_module(model: nn.Module, options: ExportOptions) -> nn.Module:
    """A CPU float32 eval-mode copy of ``model`` whose forward gives the export's outputs.

    The default is the official interface (undecoded ``[B, A, 5+C]``); ``decode`` decodes boxes
    in the graph; ``nms`` returns padded final detections (see :mod:`.nms_graph`), ``topk`` the
    top-k detections without NMS (:mod:`.topk_graph`). ``options`` are already fitted to the
    model (:func:`~yoloxkit.export.export_model` passes them through
    :func:`~.options.options_for_model`: ``nms`` on an end-to-end model becomes ``topk``).
    """
    module = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    head = getattr(module, "head", None)
    if head is None or not hasattr(head, "decode_in_inference"):
        raise TypeError("export needs a yoloxkit YOLOX model (with .head.decode_in_inference)")
    head.decode_in_inference = bool(options.decode or options.detections)
    if options.topk:
        module = TopKGraph(module, options.conf, options.topk).eval()
    elif options.nms:
        module = DetectionsGraph(module, options.conf, options.nms_iou, options.max_dets).eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module


def export_entries(module: nn.Module, options: ExportOptions) -> dict[str, str]:
    """The metadata an export of ``module`` (from :func:`export_module`) stores: model and class
    names, class count, input size, dynamic or not, end-to-end or not, output interface and the
    NMS or top-k settings, so that yoloxkit can run the file as it runs the checkpoint it came
    from. ``options`` are the ones :func:`export_module` used."""
    inner = module.model if isinstance(module, (DetectionsGraph, TopKGraph)) else module
    end_to_end = bool(getattr(inner, "end_to_end", False))
    interface = options.interface
    return export_metadata(
        model_name=options.model_name,
        names=options.names,
        num_classes=int(inner.head.num_classes),
        input_size=options.size,
        dynamic=options.dynamic,
        interface=interface,
        nms_conf=options.conf,
        nms_iou=options.nms_iou,
        max_dets=options.max_dets,
        end_to_end=end_to_end,
        topk=options.topk,
        topk_conf=options.conf,
    )
