"""All inference backends: importing this module registers ``torch``, ``onnxruntime``,
``openvino`` and the edge runtimes ``ncnn``, ``mnn`` and ``litert`` (each runtime's package is
imported only when its backend is built).
TorchScript exports run in the ``torch`` backend (:class:`TorchScriptBackend`).

The interface and the registry live in :mod:`.registry`, one module per backend beside it;
this module gathers their public names.
"""

from __future__ import annotations

from .device import resolve_device
from .litert_backend import LiteRtBackend
from .mnn_backend import MnnBackend
from .ncnn_backend import NcnnBackend
from .official import STRIDES, decode_official_output, onnx_bytes_from_model, predictions_from_outputs
from .onnxruntime_backend import OnnxRuntimeBackend
from .openvino_backend import OpenVinoBackend
from .registry import Backend, BackendFactory, backend_key, backend_names, make_backend, register_backend
from .torch_backend import TorchBackend, TorchScriptBackend

__all__ = [
    "Backend",
    "BackendFactory",
    "TorchBackend",
    "TorchScriptBackend",
    "OnnxRuntimeBackend",
    "OpenVinoBackend",
    "NcnnBackend",
    "MnnBackend",
    "LiteRtBackend",
    "register_backend",
    "make_backend",
    "backend_names",
    "backend_key",
    "onnx_bytes_from_model",
    "decode_official_output",
    "predictions_from_outputs",
    "resolve_device",
    "STRIDES",
]
