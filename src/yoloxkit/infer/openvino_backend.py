"""The OpenVINO backend (registered as ``openvino``): the official ONNX interface compiled
by the OpenVINO runtime (CPU).

The ``uint8`` ``[B, H, W, 3]`` letterboxed batch is fed as is: OpenVINO's pre-processing
converts it to float ``[B, 3, H, W]`` inside the compiled graph. Inference runs in float32
(no bf16/fp16 down-casting), so detections match the torch and onnxruntime backends. One model
is compiled per batch size and input size (static shapes run fastest) and cached.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InferenceError
from ..optional import import_openvino
from .device import resolve_device
from .official import decode_official_output, onnx_bytes_from_model
from .registry import Backend, first_line, register_backend

__all__ = ["OpenVinoBackend"]


class OpenVinoBackend(Backend):
    """OpenVINO runtime on an ONNX file or bytes with the official YOLOX interface.

    Threads follow ``torch.get_num_threads()``, like the onnxruntime backend.
    """

    name = "openvino"

    def __init__(self, model_source: str | os.PathLike | bytes, device: str | torch.device = "cpu",
                 label: str = "model", threads: int | None = None) -> None:
        ov = import_openvino()
        self.device = resolve_device(device)
        if self.device.type != "cpu":
            raise InferenceError("the openvino backend runs on the CPU here; use --device cpu")
        self._ov = ov
        self._core = ov.Core()
        self._label = label
        self._threads = int(threads or torch.get_num_threads())
        source = io.BytesIO(model_source) if isinstance(model_source, bytes) else str(model_source)
        try:
            self._model = ov.convert_model(source)
        except Exception as exc:  # OpenVINO raises its own exception types for bad files
            raise InferenceError(f"OpenVINO cannot read {label}: {first_line(exc)}") from None
        if len(self._model.inputs) != 1 or len(self._model.outputs) != 1:
            raise InferenceError(f"{label} is not a YOLOX export with the official interface (one input, one output)")
        in_shape = self._model.inputs[0].get_partial_shape()
        out_shape = self._model.outputs[0].get_partial_shape()
        if in_shape.rank.get_length() != 4 or out_shape.rank.get_length() != 3 or out_shape[2].is_dynamic:
            raise InferenceError(f"{label} is not a YOLOX export: expected [B,3,H,W] -> [B,A,5+C]")
        self.num_classes = int(out_shape[2].get_length()) - 5
        if self.num_classes < 1:
            raise InferenceError(f"{label} is not a YOLOX export: output {out_shape}")
        self.static_batch = None if in_shape[0].is_dynamic else int(in_shape[0].get_length())
        if in_shape[2].is_static and in_shape[3].is_static:
            self.fixed_size = (int(in_shape[2].get_length()), int(in_shape[3].get_length()))
        self._compiled: dict[tuple[int, int, int], Any] = {}

    def _compiled_for(self, batch: int, height: int, width: int) -> Any:
        key = (batch, height, width)
        if key not in self._compiled:
            ov = self._ov
            model = self._model.clone()
            model.reshape({model.inputs[0]: ov.PartialShape([batch, 3, height, width])})
            ppp = ov.preprocess.PrePostProcessor(model)
            ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
            ppp.input().preprocess().convert_element_type(ov.Type.f32)
            ppp.input().model().set_layout(ov.Layout("NCHW"))
            config = {
                "INFERENCE_PRECISION_HINT": "f32",
                "INFERENCE_NUM_THREADS": self._threads,
                "PERFORMANCE_HINT": "LATENCY",
            }
            try:
                self._compiled[key] = self._core.compile_model(ppp.build(), "CPU", config)
            except Exception as exc:
                reason = first_line(exc)
                raise InferenceError(f"OpenVINO cannot compile {self._label} for {height}x{width}: {reason}") from None
        return self._compiled[key]

    def infer(self, batch: np.ndarray) -> torch.Tensor:
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        height, width = batch.shape[1:3]
        step = self.static_batch or len(batch)
        outputs = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            compiled = self._compiled_for(len(chunk), height, width)
            outputs.append(np.asarray(compiled(chunk)[0]))
        output = torch.from_numpy(np.concatenate(outputs) if len(outputs) > 1 else outputs[0])
        return decode_official_output(output.float(), (height, width))


def _openvino_factory(*, model: nn.Module | None = None, onnx_path=None, size=None, device="cpu") -> Backend:
    if onnx_path is not None:
        return OpenVinoBackend(Path(onnx_path), device, label=str(onnx_path))
    return OpenVinoBackend(onnx_bytes_from_model(model, size), device, label="the exported model")


register_backend("openvino", _openvino_factory)
