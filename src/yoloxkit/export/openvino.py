"""OpenVINO IR export (``.xml`` + ``.bin``): converted from the verified ONNX graph with
``openvino.convert_model`` and verified again with the OpenVINO runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..io import staging_dir
from ..optional import import_openvino
from .graph import export_module
from .onnx import write_onnx
from .options import ExportOptions, ExportResult, output_names
from .verify import check_close, sample_input, torch_outputs

__all__ = ["export_openvino", "compile_openvino", "run_openvino"]

def compile_openvino(model: Any, threads: int | None = None, device: str = "CPU") -> Any:
    """Compile an OpenVINO model (object or ``.xml`` path) in float32 for ``device``."""
    ov = import_openvino()
    core = ov.Core()
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if isinstance(model, (str, os.PathLike)):
        model = core.read_model(str(model))
    return core.compile_model(model, device, config)


def run_openvino(compiled: Any, images: np.ndarray) -> list[np.ndarray]:
    """Run a compiled model once on ``images`` ``[B,3,H,W]``; outputs in graph order."""
    result = compiled(images)
    return [np.asarray(result[out]) for out in compiled.outputs]


def export_openvino(model: nn.Module, path: str | os.PathLike, options: ExportOptions) -> ExportResult:
    """Write OpenVINO IR to ``path`` (``.xml``; the weights go to the ``.bin`` beside it).

    Both files are written to a temporary directory and moved into place only after the IR has
    been verified against PyTorch (a failed write: :class:`~yoloxkit.errors.OutputError`).
    """
    ov = import_openvino()
    path = Path(path)
    if path.suffix != ".xml":
        path = path.with_suffix(".xml")
    module = export_module(model, options)
    images = sample_input(options.size, options.batch)
    check_images = sample_input(options.size, max(options.batch, 2) if options.dynamic else options.batch)
    expected = torch_outputs(module, check_images)
    with staging_dir(path) as workdir:
        onnx_path = workdir / "model.onnx"
        write_onnx(module, images, onnx_path, options)
        ir_path = workdir / path.name
        ov.save_model(ov.convert_model(str(onnx_path)), str(ir_path), compress_to_fp16=False)
        actual = run_openvino(compile_openvino(ir_path), check_images.numpy())
        diff = check_close(expected, actual, "OpenVINO", detections=options.detections)
        os.replace(ir_path.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(ir_path, path)
    return ExportResult(path, "openvino", output_names(options), diff, "OpenVINO")
