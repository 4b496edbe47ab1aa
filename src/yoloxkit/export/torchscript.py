"""TorchScript export (``torch.jit.trace``), verified by reloading it with ``torch.jit.load``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch
from torch import nn

from ..io import atomic_path
from ..weights import TORCHSCRIPT_METADATA
from .graph import export_entries, export_module, quiet_tracing
from .options import ExportOptions, ExportResult, output_names
from .verify import check_close, sample_input, torch_outputs

__all__ = ["export_torchscript"]


def export_torchscript(model: nn.Module, path: str | os.PathLike, options: ExportOptions) -> ExportResult:
    """Trace ``model`` (with the same decode / NMS options as ONNX) into ``path`` atomically.

    The traced module keeps the batch dimension dynamic; with ``nms`` it needs ``torchvision``
    imported at load time (for ``torchvision::nms``). The export metadata (class names, input
    size, output interface, ...) is stored as the archive's extra file ``yoloxkit.json``.
    """
    module = export_module(model, options)
    images = sample_input(options.size, options.batch)
    check_images = sample_input(options.size, max(options.batch, 2) if options.dynamic else options.batch)
    expected = torch_outputs(module, check_images)
    path = Path(path)
    with atomic_path(path) as tmp:
        with quiet_tracing(), torch.no_grad():
            traced = torch.jit.trace(module, (images,), check_trace=False)
            extra = {TORCHSCRIPT_METADATA: json.dumps(export_entries(module, options))}
            # saved to memory first: torch.jit.save aborts the process when a file write fails
            archive = io.BytesIO()
            torch.jit.save(traced, archive, _extra_files=extra)
            tmp.write_bytes(archive.getvalue())
            reloaded = torch.jit.load(str(tmp), map_location="cpu")
        actual = torch_outputs(reloaded, check_images)
        diff = check_close(expected, actual, "TorchScript", detections=options.detections)
    return ExportResult(path, "torchscript", output_names(options), diff, "TorchScript")
