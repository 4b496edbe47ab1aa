"""ONNX export through torch's TorchScript-based exporter, simplified with onnxslim and
verified in onnxruntime.

The default interface is the official YOLOX one: input ``images`` ``[B,3,H,W]`` (BGR, 0-255,
letterboxed) and output ``output`` ``[B, A, 5+C]``, undecoded, so existing YOLOX deployment
code works unchanged.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..errors import ExportError
from ..io import atomic_path
from ..ort_session import ort_session
from .graph import export_entries, export_module, quiet_tracing
from .node_order import restore_node_order
from .options import MAX_OPSET, MIN_OPSET, ExportOptions, ExportResult, output_names
from .verify import check_close, sample_input, torch_outputs

__all__ = ["export_onnx", "write_onnx", "run_onnxruntime", "check_opset"]


def check_opset(opset: int) -> None:
    """Raise :class:`ExportError` unless ``opset`` is one this exporter writes."""
    if opset < MIN_OPSET:
        raise ExportError(f"--opset {opset} is too old: the minimum is {MIN_OPSET} (the default is 11)")
    if opset > MAX_OPSET:
        raise ExportError(f"--opset {opset} is too new for the TorchScript-based exporter: the maximum is {MAX_OPSET}")


def _dynamic_axes(options: ExportOptions) -> dict[str, dict[int, str]] | None:
    if not options.dynamic:
        return None
    axes: dict[str, dict[int, str]] = {"images": {0: "batch", 2: "height", 3: "width"}}
    for name in output_names(options):
        axes[name] = {0: "batch"} if options.detections else {0: "batch", 1: "anchors"}
    return axes


def write_onnx(module: nn.Module, images: torch.Tensor, path: Path, options: ExportOptions) -> None:
    """Trace ``module`` on ``images`` into ``path`` (not atomic; callers write to a temp path)."""
    check_opset(options.opset)
    with quiet_tracing(), contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(
            module,
            (images,),
            str(path),
            dynamo=False,
            opset_version=options.opset,
            input_names=["images"],
            output_names=list(output_names(options)),
            dynamic_axes=_dynamic_axes(options),
            do_constant_folding=True,
        )
    graph_model = onnx.load(str(path))
    if options.simplify:
        import onnxslim  # imported on use: it takes ~0.4 s

        original = graph_model
        with contextlib.redirect_stdout(io.StringIO()):
            graph_model = onnxslim.slim(original)
        restore_node_order(graph_model.graph, original.graph)
    set_metadata(graph_model, export_entries(module, options))
    onnx.save(graph_model, str(path))


def set_metadata(graph_model: onnx.ModelProto, entries: dict[str, str]) -> None:
    """Store ``entries`` (:func:`~.graph.export_entries`: class names, model name, input size,
    output interface, ...) in the ONNX file's metadata properties. OpenVINO's ONNX reader keeps
    them in the IR's ``rt_info`` under ``framework``."""
    kept = [p for p in graph_model.metadata_props if p.key not in entries]
    del graph_model.metadata_props[:]
    graph_model.metadata_props.extend(kept)
    for key, value in entries.items():
        prop = graph_model.metadata_props.add()
        prop.key, prop.value = key, value


def run_onnxruntime(path: str | os.PathLike, images: np.ndarray, threads: int | None = None) -> list[np.ndarray]:
    """Run an exported file once in onnxruntime (CPU) on ``images`` ``[B,3,H,W]``."""
    session = ort_session(path, threads=threads)
    return session.run(None, {session.get_inputs()[0].name: images})


def export_onnx(model: nn.Module, path: str | os.PathLike, options: ExportOptions) -> ExportResult:
    """Export ``model`` to ONNX at ``path`` (written atomically) and verify it in onnxruntime.

    Raises :class:`ExportError` for an unsupported opset or when onnxruntime does not reproduce
    the PyTorch outputs (in which case nothing is written).
    """
    check_opset(options.opset)
    module = export_module(model, options)
    batch = max(options.batch, 2) if options.dynamic else options.batch
    images = sample_input(options.size, options.batch)
    expected_images = sample_input(options.size, batch)
    expected = torch_outputs(module, expected_images)
    path = Path(path)
    with atomic_path(path) as tmp:
        write_onnx(module, images, tmp, options)
        actual = run_onnxruntime(tmp, expected_images.numpy())
        diff = check_close(expected, actual, "onnxruntime", detections=options.detections)
    return ExportResult(path, "onnx", output_names(options), diff, "onnxruntime")
