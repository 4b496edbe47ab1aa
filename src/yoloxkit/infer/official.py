"""The output interfaces of YOLOX exports and turning each into the decoded predictions
``[B, A, 5 + C]`` that post-processing takes.

Every export takes ``images`` ``[B, 3, H, W]`` (BGR, 0-255, letterboxed). Its outputs are one of
(:class:`~yoloxkit.weights.ExportInfo` ``interface``):

- ``raw``, the official interface: undecoded ``output`` ``[B, A, 5 + C]`` (decoded here);
- ``decoded``: ``output`` ``[B, A, 5 + C]`` with boxes already in input pixels;
- ``nms`` (and ``topk``, the NMS-free graph of end-to-end models, same outputs): final
  detections ``num_dets [B, 1], boxes [B, K, 4] (xyxy), scores [B, K], class_ids [B, K]``,
  re-expressed as ``K`` predictions whose objectness is the score and whose class probabilities
  are one-hot, so that the shared confidence filter and NMS keep them as they are (a stricter
  ``conf`` or a lower ``nms`` still filters; looser values cannot bring back what the graph
  dropped). Padding past ``num_dets`` gets objectness -1 and never passes.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Sequence

import torch
from torch import nn

from ..errors import InferenceError
from ..models.head import decode_outputs
from ..weights.exported import INTERFACES
from .fuse import fuse_model

__all__ = [
    "STRIDES",
    "INTERFACES",
    "DETECTION_INTERFACES",
    "onnx_bytes_from_model",
    "decode_official_output",
    "detections_as_predictions",
    "predictions_from_outputs",
]

STRIDES = (8, 16, 32)
#: the interfaces whose outputs are final detections (``num_dets, boxes, scores, class_ids``)
DETECTION_INTERFACES = ("nms", "topk")


def onnx_bytes_from_model(model: nn.Module, size: tuple[int, int], opset: int = 11) -> bytes:
    """Serialise ``model`` to ONNX with the official interface (``images`` -> undecoded ``output``),
    dynamic batch, in memory (TorchScript-based exporter, ``dynamo=False``)."""
    module = fuse_model(model).cpu().float()
    module.head.decode_in_inference = False
    buffer = io.BytesIO()
    dummy = torch.full((1, 3, *size), 114.0)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (dummy,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["images"],
            output_names=["output"],
            dynamic_axes={"images": {0: "batch"}, "output": {0: "batch"}},
            do_constant_folding=True,
        )
    return buffer.getvalue()


def decode_official_output(output: torch.Tensor, size: tuple[int, int], strides: Sequence[int] = STRIDES) -> torch.Tensor:
    """Decode the official ONNX output ``[B, A, 5 + C]`` (raw box regression, probabilities)
    for an input of ``size`` ``(h, w)``."""
    shapes = [(size[0] // s, size[1] // s) for s in strides]
    expected = sum(h * w for h, w in shapes)
    if output.shape[1] != expected:
        raise InferenceError(
            f"the network output has {output.shape[1]} anchors but a {size[0]}x{size[1]} input gives {expected}"
            " (is it an undecoded YOLOX export with strides 8/16/32?)"
        )
    return decode_outputs(output, shapes, tuple(strides))


def detections_as_predictions(
    num_dets: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Padded NMS outputs as predictions ``[B, K, 5 + C]``: ``cx, cy, w, h``, the score as
    objectness (-1 past ``num_dets``) and one-hot class probabilities."""
    batch, slots = scores.shape[:2]
    boxes = boxes.float().reshape(batch, slots, 4)
    out = torch.zeros(batch, slots, 5 + num_classes, dtype=torch.float32, device=boxes.device)
    out[..., :2] = (boxes[..., :2] + boxes[..., 2:]) / 2
    out[..., 2:4] = boxes[..., 2:] - boxes[..., :2]
    valid = torch.arange(slots, device=boxes.device).unsqueeze(0) < num_dets.reshape(batch, 1).to(boxes.device)
    out[..., 4] = torch.where(valid, scores.float().reshape(batch, slots), torch.full_like(out[..., 4], -1.0))
    ids = class_ids.reshape(batch, slots).to(torch.int64).clamp(0, num_classes - 1)
    out[..., 5:].scatter_(-1, ids.unsqueeze(-1).to(boxes.device), 1.0)
    return out


def predictions_from_outputs(
    outputs: Sequence[torch.Tensor], interface: str, size: tuple[int, int], num_classes: int, label: str = "model"
) -> torch.Tensor:
    """Decoded predictions ``[B, A, 5 + C]`` from an export's outputs (in graph order) for an input
    of ``size`` ``(h, w)``; ``interface`` is ``raw``, ``decoded``, ``nms`` or ``topk``."""
    if interface in DETECTION_INTERFACES:
        if len(outputs) != 4:
            raise InferenceError(f"{label} is an --{interface} export but gives {len(outputs)} outputs, not 4")
        return detections_as_predictions(*outputs, num_classes=num_classes)
    output = outputs[0].float()
    if output.ndim != 3 or output.shape[-1] != 5 + num_classes:
        raise InferenceError(
            f"{label} is not a YOLOX export: expected an output [B, A, {5 + num_classes}], got {tuple(output.shape)}"
        )
    return output if interface == "decoded" else decode_official_output(output, size)
