"""Export for deployment: ONNX (official interface, optional in-graph decode and NMS, or the
NMS-free top-k graph of end-to-end models), TorchScript, OpenVINO IR and the edge runtimes'
formats (ncnn, MNN, LiteRT: :mod:`.edge`). Every export is verified in its own runtime against
PyTorch.

The formats, their suffixes and their writers come from the one format registry,
:mod:`yoloxkit.weights.formats`: each entry names its writer, a function of a module here.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

from torch import nn

from ..errors import ExportError
from ..io import check_writable
from ..weights.formats import FileFormat, find_format
from ..models import anchor_based
from .options import FORMATS, ExportOptions, ExportResult, default_output_path, options_for_model

__all__ = [
    "FORMATS", "ExportOptions", "ExportResult", "FileCheck", "default_output_path", "export_model", "options_for_model",
]

Writer = Callable[..., ExportResult]  # (model, path, options[, check=...]) -> ExportResult
#: an accuracy check of the staged file before it is moved into place (edge formats): raises
#: :class:`ExportError` to refuse it
FileCheck = Callable[[Path], None]


def export_format(fmt: str) -> FileFormat:
    """The registry entry of an export format; :class:`ExportError` naming the choices otherwise."""
    entry = find_format(fmt)
    if entry is None or entry.writer is None:
        raise ExportError(f"unsupported export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return entry


def writer_of(entry: FileFormat) -> Writer:
    """The writer an entry names (``module:function`` of this package)."""
    module, function = entry.writer.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)


def export_model(
    model: nn.Module, fmt: str, path: str | os.PathLike | None, options: ExportOptions,
    check: FileCheck | None = None,
) -> ExportResult:
    """Export ``model`` to ``fmt`` (``onnx``, ``torchscript``, ``openvino``, ``ncnn``, ``mnn`` or
    ``tflite``) at ``path``, verify it in that format's runtime and return where it went and the
    max abs difference (and, for the edge formats, its latency against onnxruntime).

    ``options.half`` (fp16 weights) and ``check`` (called on the staged file before it is moved
    into place; e.g. an AP gate that raises :class:`ExportError`) are for the edge formats.

    ``options`` are first fitted to the model (:func:`~.options.options_for_model`: ``nms`` on an
    end-to-end model becomes ``topk``); ``path=None`` is :func:`default_output_path` of
    ``options.model_name`` for the fitted options. ``path`` is checked for writing before any
    work (:class:`~yoloxkit.errors.OutputError`).
    """
    entry = export_format(fmt)
    if (options.half or check is not None) and not entry.edge:
        what = "--half" if options.half else "an accuracy check of the file (--val-data without --int8)"
        raise ExportError(f"{what} is offered for the edge formats (ncnn, mnn, tflite), not --format {entry.name}")
    options = options_for_model(options, bool(getattr(model, "end_to_end", False)), anchor_based(model))
    if path is None:
        path = default_output_path(options.model_name or "yolox", entry.name, options)
    check_writable(path)
    if check is not None:
        return writer_of(entry)(model, path, options, check=check)
    return writer_of(entry)(model, path, options)
