"""Export for deployment: ONNX (official interface, optional in-graph decode and NMS, or the
NMS-free top-k graph of end-to-end models), TorchScript and OpenVINO IR. Every export is verified
in its own runtime against PyTorch."""

from __future__ import annotations

import os
from typing import Callable

from torch import nn

from ..errors import ExportError
from .onnx import export_onnx
from .openvino import export_openvino
from .options import FORMATS, ExportOptions, ExportResult, default_output_path, options_for_model
from .torchscript import export_torchscript

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "default_output_path", "export_model", "options_for_model"]

_EXPORTERS: dict[str, Callable[[nn.Module, str | os.PathLike, ExportOptions], ExportResult]] = {
    "onnx": export_onnx,
    "torchscript": export_torchscript,
    "openvino": export_openvino,
}


def export_model(
    model: nn.Module, fmt: str, path: str | os.PathLike | None, options: ExportOptions
) -> ExportResult:
    """Export ``model`` to ``fmt`` (``onnx``, ``torchscript`` or ``openvino``) at ``path``,
    verify it in that format's runtime and return where it went and the max abs difference.

    ``options`` are first fitted to the model (:func:`~.options.options_for_model`: ``nms`` on an
    end-to-end model becomes ``topk``); ``path=None`` is :func:`default_output_path` of
    ``options.model_name`` for the fitted options.
    """
    exporter = _EXPORTERS.get(fmt.lower())
    if exporter is None:
        raise ExportError(f"unsupported export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    options = options_for_model(options, bool(getattr(model, "end_to_end", False)))
    if path is None:
        path = default_output_path(options.model_name or "yolox", fmt.lower(), options)
    return exporter(model, path, options)
