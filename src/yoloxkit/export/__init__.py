"""Export for deployment: ONNX (official interface, optional in-graph decode and NMS),
TorchScript and OpenVINO IR. Every export is verified in its own runtime against PyTorch."""

from __future__ import annotations

import os

from torch import nn

from ..errors import ExportError
from .options import FORMATS, ExportOptions, ExportResult, default_output_path

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "default_output_path", "export_model"]


def export_model(model: nn.Module, fmt: str, path: str | os.PathLike, options: ExportOptions) -> ExportResult:
    """Export ``model`` to ``fmt`` (``onnx``, ``torchscript`` or ``openvino``) at ``path``,
    verify it in that format's runtime and return where it went and the max abs difference."""
    fmt = fmt.lower()
    if fmt == "onnx":
        from .onnx import export_onnx

        return export_onnx(model, path, options)
    if fmt == "torchscript":
        from .torchscript import export_torchscript

        return export_torchscript(model, path, options)
    if fmt == "openvino":
        from .openvino import export_openvino

        return export_openvino(model, path, options)
    raise ExportError(f"unsupported export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
