"""The official YOLOX ONNX interface that the runtime backends run: ``images`` ``[B, 3, H, W]``
(BGR, 0-255, letterboxed) -> undecoded ``output`` ``[B, A, 5 + C]``."""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Sequence

import torch
from torch import nn

from ..errors import InferenceError
from ..models.head import decode_outputs
from .fuse import fuse_model

__all__ = ["STRIDES", "onnx_bytes_from_model", "decode_official_output"]

STRIDES = (8, 16, 32)


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
