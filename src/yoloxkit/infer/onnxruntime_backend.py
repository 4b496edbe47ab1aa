"""The ONNX Runtime backend (registered as ``onnxruntime``; the default for ``.onnx`` weights)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import InferenceError, first_line
from ..imaging import PAD_VALUE
from ..optional import import_onnxruntime
from ..ort_session import ort_session
from .device import resolve_device
from ..weights import ExportInfo
from .official import DETECTION_INTERFACES, onnx_bytes_from_model, predictions_from_outputs
from .registry import Backend, file_precision, register_backend

__all__ = ["OnnxRuntimeBackend"]


def _static_dim(dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on an ONNX file or bytes: the official interface, or any ``yoloxkit export``
    ONNX file (``--decode``, ``--nms``, ``--topk``; ``export`` describes it).

    Intra-op threads follow ``torch.get_num_threads()``; all graph optimisations are on.
    Files with a static batch of 1 (like the official export) run image by image.
    """

    name = "onnxruntime"

    def __init__(self, model_source: str | os.PathLike | bytes, device: str | torch.device = "cpu",
                 label: str = "model", size: tuple[int, int] | None = None,
                 export: ExportInfo | None = None) -> None:
        ort = import_onnxruntime()
        self.device = resolve_device(device)
        providers: list = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise InferenceError(
                    "device cuda with the onnxruntime backend needs onnxruntime-gpu (pip install onnxruntime-gpu)"
                )
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device.index or 0}))
        try:
            self.session = ort_session(model_source, threads=torch.get_num_threads(), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise InferenceError(f"onnxruntime cannot load {label}: {first_line(exc)}") from None
        self.label = label
        self.interface = export.interface if export is not None else "raw"
        if export is not None:
            self.precision = file_precision(export, "QDQ")
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise InferenceError(f"{label} is not a YOLOX export: expected one input [B, 3, H, W]")
        self.input_name = inputs[0].name
        self.output_names = [out.name for out in outputs]
        if self.interface not in DETECTION_INTERFACES:
            self.output_names = self.output_names[:1]
        batch_dim, _, height, width = inputs[0].shape
        self.static_batch = _static_dim(batch_dim)
        if _static_dim(height) and _static_dim(width):
            self.fixed_size = (int(height), int(width))
        if self.interface in DETECTION_INTERFACES:
            if not export.num_classes:
                raise InferenceError(f"{label} is an --{self.interface} export that does not say its class count")
            self.num_classes = int(export.num_classes)
            return
        out_shape = outputs[0].shape
        channels = out_shape[-1] if len(out_shape) == 3 else None
        if len(out_shape) == 3 and not isinstance(channels, int):
            # Symbolic output dims (dynamic exports): run once on a blank input to learn them.
            probe_size = self.fixed_size or size
            if probe_size is None:
                raise InferenceError(f"{label} has dynamic input and output sizes; give the input size")
            blank = np.full((self.static_batch or 1, 3, *probe_size), float(PAD_VALUE), dtype=np.float32)
            channels = self.session.run(self.output_names, {self.input_name: blank})[0].shape[-1]
        expected = 5 + export.num_classes if export is not None and export.num_classes else None
        if not isinstance(channels, int) or channels < 6 or channels != (expected or channels):
            raise InferenceError(
                f"{label} is not a YOLOX export: expected an output [B, A, {expected or '5 + C'}], got {out_shape}"
            )
        self.num_classes = channels - 5

    def infer(self, batch: np.ndarray) -> torch.Tensor:
        images = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        count = len(images)
        step = self.static_batch or count
        if count % step:  # a file with a static batch: pad the last chunk with blank images
            padding = np.full((step - count % step, *images.shape[1:]), float(PAD_VALUE), dtype=np.float32)
            images = np.concatenate([images, padding])
        runs = [
            self.session.run(self.output_names, {self.input_name: images[i : i + step]})
            for i in range(0, len(images), step)
        ]
        outputs = [torch.from_numpy(np.concatenate(parts))[:count] for parts in zip(*runs)]
        return predictions_from_outputs(outputs, self.interface, tuple(batch.shape[1:3]), self.num_classes, self.label)


def _onnxruntime_factory(*, model=None, onnx_path=None, size=None, device="cpu", export=None) -> Backend:
    if export is not None and export.kind != "onnx":
        raise InferenceError(
            f"the onnxruntime backend runs .onnx files; {export.path} is {export.kind}"
            f" (use --backend {'openvino' if export.kind == 'openvino' else 'torch'})"
        )
    if onnx_path is not None:
        return OnnxRuntimeBackend(Path(onnx_path), device, label=str(onnx_path), size=size, export=export)
    return OnnxRuntimeBackend(onnx_bytes_from_model(model, size), device, label="the exported model", size=size)


register_backend("onnxruntime", _onnxruntime_factory)
