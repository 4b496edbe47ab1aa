"""The OpenVINO backend (registered as ``openvino``, the default for ``.xml`` weights): an ONNX
file or an OpenVINO IR compiled by the OpenVINO runtime (CPU), with any export interface (the
official one, ``--decode`` or ``--nms``; see :mod:`.official`).

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

from ..errors import InferenceError, first_line
from ..imaging import PAD_VALUE
from ..optional import import_openvino
from .device import resolve_device
from ..weights import ExportInfo
from .official import DETECTION_INTERFACES, onnx_bytes_from_model, predictions_from_outputs
from .registry import Backend, file_precision, register_backend

__all__ = ["OpenVinoBackend", "default_float_precision", "openvino_precision"]


class OpenVinoBackend(Backend):
    """OpenVINO runtime on an ONNX file, an OpenVINO IR (``.xml``) or ONNX bytes.

    Threads follow ``torch.get_num_threads()``, like the onnxruntime backend.
    """

    name = "openvino"

    def __init__(self, model_source: str | os.PathLike | bytes, device: str | torch.device = "cpu",
                 label: str = "model", threads: int | None = None, export: ExportInfo | None = None) -> None:
        ov = import_openvino()
        self.device = resolve_device(device)
        if self.device.type != "cpu":
            raise InferenceError("the openvino backend runs on the CPU here; use --device cpu")
        self._ov = ov
        self._core = ov.Core()
        self._label = label
        self._threads = int(threads or torch.get_num_threads())
        self.interface = export.interface if export is not None else "raw"
        self.precision = openvino_precision(self._core, export)
        try:
            if isinstance(model_source, bytes):
                self._model = ov.convert_model(io.BytesIO(model_source))
            elif Path(model_source).suffix.lower() == ".xml":
                self._model = self._core.read_model(str(model_source))
            else:
                self._model = ov.convert_model(str(model_source))
        except Exception as exc:  # OpenVINO raises its own exception types for bad files
            raise InferenceError(f"OpenVINO cannot read {label}: {first_line(exc)}") from None
        outputs = 4 if self.interface in DETECTION_INTERFACES else 1
        if len(self._model.inputs) != 1 or len(self._model.outputs) != outputs:
            raise InferenceError(f"{label} is not a YOLOX export: expected one input and {outputs} output(s)")
        in_shape = self._model.inputs[0].get_partial_shape()
        if in_shape.rank.get_length() != 4:
            raise InferenceError(f"{label} is not a YOLOX export: expected an input [B, 3, H, W]")
        if self.interface in DETECTION_INTERFACES:
            if export is None or not export.num_classes:
                raise InferenceError(f"{label} is an --{self.interface} export that does not say its class count")
            self.num_classes = int(export.num_classes)
        else:
            out_shape = self._model.outputs[0].get_partial_shape()
            if out_shape.rank.get_length() != 3 or out_shape[2].is_dynamic:
                raise InferenceError(f"{label} is not a YOLOX export: expected [B,3,H,W] -> [B,A,5+C]")
            self.num_classes = int(out_shape[2].get_length()) - 5
            if self.num_classes < 1 or (export is not None and export.num_classes not in (None, self.num_classes)):
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
        runs = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            if len(chunk) < step:  # a file with a static batch: pad the last chunk with blank images
                chunk = np.concatenate([chunk, np.full((step - len(chunk), *chunk.shape[1:]), PAD_VALUE, np.uint8)])
            compiled = self._compiled_for(len(chunk), height, width)
            result = compiled(chunk)
            runs.append([np.asarray(result[out]) for out in compiled.outputs])
        outputs = [torch.from_numpy(np.concatenate(parts))[: len(batch)] for parts in zip(*runs)]
        return predictions_from_outputs(outputs, self.interface, (height, width), self.num_classes, self._label)


def openvino_precision(core: Any, export: ExportInfo | None) -> str:
    """What the compiled model computes in: int8 for an INT8 IR, else f32, which this backend
    forces (on a CPU with AMX or AVX-512 BF16, OpenVINO's own default for float models is bf16)."""
    if export is not None and export.precision == "int8":
        return file_precision(export, "NNCF")
    default = default_float_precision(core)
    return "fp32" if default is None else f"fp32 (forced; OpenVINO's default on this CPU: {default})"


def default_float_precision(core: Any) -> str | None:
    """OpenVINO's own default precision for float models on this CPU where it is not f32 (``bf16``
    on a CPU with AMX or AVX-512 BF16), else None (also for an OpenVINO without the property)."""
    try:
        default = core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    except Exception:  # OpenVINO raises its own exception types
        return None
    return None if default == "f32" else default


def _openvino_factory(*, model: nn.Module | None = None, onnx_path=None, size=None, device="cpu",
                      export: ExportInfo | None = None) -> Backend:
    if export is not None:
        if export.kind == "torchscript":
            raise InferenceError(f"the openvino backend runs .onnx and .xml files; {export.path} is TorchScript")
        return OpenVinoBackend(export.path, device, label=str(export.path), export=export)
    if onnx_path is not None:
        return OpenVinoBackend(Path(onnx_path), device, label=str(onnx_path))
    return OpenVinoBackend(onnx_bytes_from_model(model, size), device, label="the exported model")


register_backend("openvino", _openvino_factory)
