"""The PyTorch backend (registered as ``torch``, the default)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import InferenceError
from .device import resolve_device
from .fuse import fuse_model
from .registry import Backend, register_backend

__all__ = ["TorchBackend"]


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
        self.model = fuse_model(model).to(self.device, dtype=self.dtype, memory_format=torch.channels_last)
        self.model.head.decode_in_inference = True
        self.num_classes = int(self.model.head.num_classes)

    def infer(self, batch: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        # [B, H, W, 3] uint8 -> [B, 3, H, W] float viewed channels-last: no copy of the layout.
        images = images.permute(0, 3, 1, 2).to(self.dtype)
        with torch.inference_mode():
            return self.model(images).float()


def _torch_factory(*, model=None, onnx_path=None, size=None, device="cpu", half=False) -> Backend:
    if model is None:
        raise InferenceError(f"the torch backend needs PyTorch weights; import {onnx_path} into a model first")
    return TorchBackend(model, device, half=half)


register_backend("torch", _torch_factory)
