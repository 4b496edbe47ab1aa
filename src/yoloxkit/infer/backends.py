"""Inference backends behind one small interface, and a registry to pick them by name.

A backend maps a letterboxed batch (``uint8`` ``[B, H, W, 3]``, BGR, from
:func:`~yoloxkit.infer.preprocess.letterbox_batch`) to decoded predictions ``[B, A, 5 + C]``
(``cx, cy, w, h`` in input pixels, objectness and class probabilities), the eval-mode output
of the PyTorch model. Post-processing is shared by all backends.

Other modules add backends with :func:`register_backend`; :func:`make_backend` builds one.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InferenceError, MissingDependencyError
from ..models.head import decode_outputs
from .fuse import fuse_model

__all__ = [
    "Backend",
    "BackendFactory",
    "TorchBackend",
    "OnnxRuntimeBackend",
    "register_backend",
    "make_backend",
    "backend_names",
    "onnx_bytes_from_model",
    "decode_official_output",
    "resolve_device",
    "STRIDES",
]

STRIDES = (8, 16, 32)


class Backend(ABC):
    """Runs the detector network on letterboxed batches."""

    #: registry name (``torch``, ``onnxruntime``, ...)
    name: str = ""
    #: number of classes the network predicts
    num_classes: int = 0
    #: the PyTorch module this backend runs, if any
    model: nn.Module | None = None
    #: ``(h, w)`` the network requires, for files with a static input size; None if any size works
    fixed_size: tuple[int, int] | None = None
    #: torch device the predictions come back on
    device: torch.device = torch.device("cpu")

    @abstractmethod
    def infer(self, batch: np.ndarray) -> torch.Tensor:
        """Decoded predictions ``[B, A, 5 + C]`` float32 for a ``uint8`` ``[B, H, W, 3]`` batch."""


#: ``factory(model=..., onnx_path=..., size=(h, w), device=...) -> Backend``. ``model`` is an
#: eval-mode yoloxkit YOLOX module on the CPU (None when only an ONNX file was given);
#: ``onnx_path`` is an ONNX file with the official interface, if the user gave one.
BackendFactory = Callable[..., Backend]

_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``factory`` available as ``Detector(..., backend=name)``."""
    _REGISTRY[name] = factory


def backend_names() -> list[str]:
    """Names of the registered backends (plus ``openvino``, registered on first use)."""
    _load_optional_backends()
    return sorted(_REGISTRY)


def _load_optional_backends() -> None:
    """Import backend modules living elsewhere in the package, if they exist."""
    import importlib
    import importlib.util

    for module in ("yoloxkit.infer.openvino_backend",):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def make_backend(
    name: str,
    *,
    model: nn.Module | None = None,
    onnx_path: str | os.PathLike | None = None,
    size: tuple[int, int],
    device: str | torch.device = "cpu",
    **options,
) -> Backend:
    """Build the backend registered as ``name`` (see :data:`BackendFactory`).

    ``options`` are backend-specific (the torch backend takes ``half=True`` on CUDA).
    """
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        _load_optional_backends()
    if key not in _REGISTRY:
        raise InferenceError(f"unknown backend {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    if model is None and onnx_path is None:
        raise InferenceError(f"backend {key!r} needs a model or an ONNX file")
    try:
        return _REGISTRY[key](model=model, onnx_path=onnx_path, size=size, device=device, **options)
    except TypeError as exc:
        if options and "unexpected keyword argument" in str(exc):
            raise InferenceError(f"backend {key!r} does not support {', '.join(options)}") from None
        raise


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``cpu``/``cuda``/``cuda:N`` as a torch device; one-line error when CUDA is unavailable."""
    try:
        resolved = torch.device(device if device is not None else "cpu")
    except (RuntimeError, TypeError):
        raise InferenceError(f"invalid device {device!r}; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InferenceError(f"device {device!r} requested but CUDA is not available on this machine; use cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InferenceError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif resolved.type != "cpu":
        raise InferenceError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    return resolved


# ----------------------------------------------------------------------------------------
# PyTorch


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


# ----------------------------------------------------------------------------------------
# ONNX Runtime


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


def _static_dim(dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on an ONNX file or bytes with the official YOLOX interface.

    Intra-op threads follow ``torch.get_num_threads()``; all graph optimisations are on.
    Files with a static batch of 1 (like the official export) run image by image.
    """

    name = "onnxruntime"

    def __init__(self, model_source: str | os.PathLike | bytes, device: str | torch.device = "cpu",
                 label: str = "model", size: tuple[int, int] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("the onnxruntime backend needs onnxruntime: pip install onnxruntime") from None
        self.device = resolve_device(device)
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise InferenceError(
                    "device cuda with the onnxruntime backend needs onnxruntime-gpu (pip install onnxruntime-gpu)"
                )
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device.index or 0}))
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = str(model_source) if isinstance(model_source, (str, os.PathLike)) else model_source
        try:
            self.session = ort.InferenceSession(source, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InferenceError(f"onnxruntime cannot load {label}: {reason}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise InferenceError(f"{label} is not a YOLOX export: expected one input [B, 3, H, W]")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        batch_dim, _, height, width = inputs[0].shape
        self.static_batch = _static_dim(batch_dim)
        if _static_dim(height) and _static_dim(width):
            self.fixed_size = (int(height), int(width))
        out_shape = outputs[0].shape
        channels = out_shape[-1] if len(out_shape) == 3 else None
        if len(out_shape) == 3 and not isinstance(channels, int):
            # Symbolic output dims (dynamic exports): run once on a blank input to learn them.
            probe_size = self.fixed_size or size
            if probe_size is None:
                raise InferenceError(f"{label} has dynamic input and output sizes; give the input size")
            blank = np.full((self.static_batch or 1, 3, *probe_size), 114.0, dtype=np.float32)
            channels = self.session.run([self.output_name], {self.input_name: blank})[0].shape[-1]
        if not isinstance(channels, int) or channels < 6:
            raise InferenceError(f"{label} is not a YOLOX export: expected an output [B, A, 5 + C], got {out_shape}")
        self.num_classes = channels - 5

    def infer(self, batch: np.ndarray) -> torch.Tensor:
        images = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        count = len(images)
        step = self.static_batch or count
        if count % step:  # a file with a static batch: pad the last chunk with blank images
            padding = np.full((step - count % step, *images.shape[1:]), 114.0, dtype=np.float32)
            images = np.concatenate([images, padding])
        outputs = [
            self.session.run([self.output_name], {self.input_name: images[i : i + step]})[0]
            for i in range(0, len(images), step)
        ]
        output = torch.from_numpy(np.concatenate(outputs) if len(outputs) > 1 else outputs[0])[:count]
        return decode_official_output(output.float(), tuple(batch.shape[1:3]))


def _onnxruntime_factory(*, model=None, onnx_path=None, size=None, device="cpu") -> Backend:
    if onnx_path is not None:
        return OnnxRuntimeBackend(Path(onnx_path), device, label=str(onnx_path), size=size)
    return OnnxRuntimeBackend(onnx_bytes_from_model(model, size), device, label="the exported model", size=size)


register_backend("torch", _torch_factory)
register_backend("onnxruntime", _onnxruntime_factory)
