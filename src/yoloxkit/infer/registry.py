"""The backend interface and the registry that picks a backend by name.

A backend maps a letterboxed batch (``uint8`` ``[B, H, W, 3]``, BGR, from
:func:`~yoloxkit.imaging.letterbox_batch`) to decoded predictions ``[B, A, 5 + C]``
(``cx, cy, w, h`` in input pixels, objectness and class probabilities), the eval-mode output
of the PyTorch model. Post-processing is shared by all backends.

Backend modules add themselves with :func:`register_backend`; :mod:`.backends` imports them
all, and :func:`make_backend` builds one.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import InferenceError
from ..weights import ExportInfo

__all__ = [
    "Backend",
    "BackendFactory",
    "register_backend",
    "file_precision",
    "backend_names",
    "backend_key",
    "make_backend",
]


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
    #: an end-to-end (``-e2e``, NMS-free) network: its scores are final without NMS
    end_to_end: bool = False
    #: the output interface of the file it runs (:data:`~yoloxkit.weights.exported.INTERFACES`)
    interface: str = "raw"
    #: a ``--topk`` export: the K its graph keeps per image; None otherwise
    graph_topk: int | None = None
    #: the precision the network computes in as this backend runs it (``fp32``, ``fp16``, ``int8``, with
    #: notes such as OpenVINO's own default on this CPU), for ``benchmark``'s table
    precision: str = "fp32"

    @property
    def nms_free(self) -> bool:
        """Whether its predictions need no NMS: an end-to-end network, or a ``--topk`` export
        (whose graph already picked the final detections)."""
        return bool(self.end_to_end) or self.interface == "topk"

    @abstractmethod
    def infer(self, batch: np.ndarray) -> torch.Tensor:
        """Decoded predictions ``[B, A, 5 + C]`` float32 for a ``uint8`` ``[B, H, W, 3]`` batch."""


#: ``factory(model=..., onnx_path=..., size=(h, w), device=..., export=...) -> Backend``.
#: ``model`` is an eval-mode yoloxkit YOLOX module on the CPU (None when only an exported file
#: was given); ``onnx_path`` is an ONNX file, if the user gave one; ``export`` (passed only when
#: the user gave an exported file: ONNX, OpenVINO IR or TorchScript) is its
#: :class:`~yoloxkit.weights.ExportInfo` (kind, output interface, class count, fixed size,
#: end-to-end or not). :func:`make_backend` sets the backend's ``end_to_end`` from ``model`` or
#: ``export``.
BackendFactory = Callable[..., Backend]

_REGISTRY: dict[str, BackendFactory] = {}


def file_precision(export: ExportInfo, quantizer: str) -> str:
    """``Backend.precision`` of an exported file that computes in float32 unless it is INT8 (the
    edge runtimes, as yoloxkit runs them): ``fp32``, ``fp32 (fp16 weights)`` for ``--half``
    files, whose weights the runtime widens at load, or ``int8 (QUANTIZER; ...)``."""
    if export.precision == "int8":
        return f"int8 ({quantizer}; float where the recipe keeps it)"
    return "fp32 (fp16 weights)" if export.precision == "float16" else "fp32"


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``factory`` available as ``Detector(..., backend=name)``."""
    _REGISTRY[name] = factory


def backend_names() -> list[str]:
    """Names of the registered backends, sorted."""
    return sorted(_REGISTRY)


def backend_key(name: str) -> str:
    """The registry key for ``name`` (trimmed, lower case); :class:`InferenceError` naming the
    registered backends when there is none."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise InferenceError(f"unknown backend {name!r}; choose one of: {', '.join(backend_names())}")
    return key


def make_backend(
    name: str,
    *,
    model: nn.Module | None = None,
    onnx_path: str | os.PathLike | None = None,
    size: tuple[int, int],
    device: str | torch.device = "cpu",
    export: ExportInfo | None = None,
    **options,
) -> Backend:
    """Build the backend registered as ``name`` (see :data:`BackendFactory`).

    ``options`` are backend-specific (the torch backend takes ``half=True`` on CUDA).
    """
    key = backend_key(name)
    if model is None and onnx_path is None and export is None:
        raise InferenceError(f"backend {key!r} needs a model or an exported file")
    if export is not None:
        options = {"export": export, **options}
    try:
        backend = _REGISTRY[key](model=model, onnx_path=onnx_path, size=size, device=device, **options)
    except TypeError as exc:
        if options and "unexpected keyword argument" in str(exc):
            if "'export'" in str(exc):
                raise InferenceError(f"backend {key!r} cannot run {export.path}") from None
            raise InferenceError(f"backend {key!r} does not support {', '.join(options)}") from None
        raise
    if export is not None:
        backend.end_to_end = bool(export.end_to_end)
        backend.graph_topk = export.topk if export.interface == "topk" else None
    elif model is not None:
        backend.end_to_end = bool(getattr(model, "end_to_end", False))
    return backend
