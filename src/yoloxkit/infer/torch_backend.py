"""The PyTorch backend (registered as ``torch``, the default): an eager YOLOX module, or a
TorchScript export (``yoloxkit export --format torchscript``, any output interface)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from ..errors import InferenceError, first_line
from .device import resolve_device
from .fuse import fuse_model
from ..weights import ExportInfo
from .official import predictions_from_outputs
from .registry import Backend, register_backend

__all__ = ["TorchBackend", "TorchScriptBackend"]


class TorchBackend(Backend):
    """Eager PyTorch: Conv+BN fused on a copy, channels-last memory, ``inference_mode``.

    Channels-last lets the letterboxed ``[B, H, W, 3]`` batch feed the convolutions without a
    layout change and makes the CPU convolutions markedly faster (see docs/BENCHMARKS.md).
    """

    name = "torch"

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", half: bool = False) -> None:
        self.device = resolve_device(device)
        if half and self.device.type != "cuda":
            raise InferenceError("half precision (float16) needs a CUDA device; use float32 on the CPU")
        self.dtype = torch.float16 if half else torch.float32
        self.precision = "fp16" if half else "fp32"
        self.model = fuse_model(model).to(self.device, dtype=self.dtype, memory_format=torch.channels_last)
        self.model.head.decode_in_inference = True
        self.num_classes = int(self.model.head.num_classes)

    def infer(self, batch: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        # [B, H, W, 3] uint8 -> [B, 3, H, W] float viewed channels-last: no copy of the layout.
        images = images.permute(0, 3, 1, 2).to(self.dtype)
        with torch.inference_mode():
            return self.model(images).float()


class TorchScriptBackend(Backend):
    """A TorchScript export loaded with ``torch.jit.load``; its outputs follow ``export.interface``."""

    name = "torch"

    def __init__(self, export: ExportInfo, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.interface = export.interface
        self.label = str(export.path)
        if not export.num_classes:
            raise InferenceError(f"{export.path} does not say its class count; re-export it with yoloxkit")
        self.num_classes = int(export.num_classes)
        self.fixed_size = export.fixed_size
        if self.interface == "nms":
            import torchvision  # noqa: F401  (registers torchvision::nms, which the graph calls)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
                self.script = torch.jit.load(str(export.path), map_location=self.device).eval()
        except Exception as exc:  # TorchScript raises its own exception types for bad files
            raise InferenceError(f"TorchScript cannot load {export.path}: {first_line(exc)}") from None

    def infer(self, batch: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            out = self.script(images)
        outputs = list(out) if isinstance(out, (tuple, list)) else [out]
        return predictions_from_outputs(outputs, self.interface, tuple(batch.shape[1:3]), self.num_classes, self.label)


def _torch_factory(*, model=None, onnx_path=None, size=None, device="cpu", half=False,
                   export: ExportInfo | None = None) -> Backend:
    if export is not None and export.kind == "torchscript":
        if half:
            raise InferenceError("half precision applies to PyTorch checkpoints, not to a TorchScript export")
        return TorchScriptBackend(export, device)
    if export is not None and export.kind == "openvino":
        raise InferenceError(f"the torch backend cannot run the OpenVINO IR {export.path}; use --backend openvino")
    if model is None:
        source = export.path if export is not None else onnx_path
        raise InferenceError(f"the torch backend needs PyTorch weights; import {source} into a model first")
    return TorchBackend(model, device, half=half)


register_backend("torch", _torch_factory)
