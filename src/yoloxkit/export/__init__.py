"""Export for deployment: ONNX (official interface, optional in-graph decode and NMS, or the
NMS-free top-k graph of end-to-end models), TorchScript and OpenVINO IR. Every export is verified
in its own runtime against PyTorch.

The formats, their suffixes and their writers come from the one format registry,
:mod:`yoloxkit.weights.formats`: each entry names its writer, a function of a module here.
"""

from __future__ import annotations

import importlib
import os
from typing import Callable

from torch import nn

from ..errors import ExportError
from ..io import check_writable
from ..weights.formats import FileFormat, find_format
from ..models import anchor_based
from .options import FORMATS, ExportOptions, ExportResult, default_output_path, options_for_model

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "default_output_path", "export_model", "options_for_model"]

Writer = Callable[[nn.Module, "str | os.PathLike", ExportOptions], ExportResult]


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
    model: nn.Module, fmt: str, path: str | os.PathLike | None, options: ExportOptions
) -> ExportResult:
    """Export ``model`` to ``fmt`` (``onnx``, ``torchscript`` or ``openvino``) at ``path``,
    verify it in that format's runtime and return where it went and the max abs difference.

    ``options`` are first fitted to the model (:func:`~.options.options_for_model`: ``nms`` on an
    end-to-end model becomes ``topk``); ``path=None`` is :func:`default_output_path` of
    ``options.model_name`` for the fitted options. ``path`` is checked for writing before any
    work (:class:`~yoloxkit.errors.OutputError`).
    """
    entry = export_format(fmt)
    options = options_for_model(options, bool(getattr(model, "end_to_end", False)), anchor_based(model))
    if path is None:
        path = default_output_path(options.model_name or "yolox", entry.name, options)
    check_writable(path)
    return writer_of(entry)(model, path, options)
