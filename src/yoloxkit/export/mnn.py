"""MNN export (``STEM.mnn`` with its metadata ``STEM.mnn.json`` beside it): the float ONNX graph
converted by MNN's converter, verified in MNN's runtime against PyTorch and timed against
onnxruntime.

The converter is called through the ``_tools`` extension that the MNN wheel ships
(``_tools.mnnconvert(argv)``), never through the package's ``mnnconvert``/``mnnquant`` scripts or
``MNN.tools``: those import a logger that runs ``pip install`` and sends usage logs over the
network. The converter's console output is captured and shown only when it fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..infer.mnn_backend import import_mnn_quietly, load_mnn_runner
from ..native_output import native_output
from ..io import staging_dir
from ..optional import import_optional
from .edge import check_edge_options, edge_path, verify_and_place, weights_precision, write_edge_sidecar
from .graph import export_module
from .onnx import write_onnx
from .options import ExportOptions, ExportResult
from .verify import sample_input, torch_outputs

__all__ = ["export_mnn", "run_mnn_file", "convert_to_mnn", "write_mnn"]

_CONVERTER_HINT = "export --format mnn needs MNN's converter (in the MNN package): pip install 'yoloxkit[mnn]'"


def _converter():
    """MNN's converter extension ``_tools`` (no logger, no network)."""
    import_mnn_quietly()  # the runtime first: the converter ships in the same wheel
    with native_output():
        return import_optional("_tools", _CONVERTER_HINT)


def convert_to_mnn(onnx_path: Path, mnn_path: Path, half: bool = False, extra: Sequence[str] = ()) -> None:
    """Convert the ONNX file ``onnx_path`` into ``mnn_path`` with MNN's converter; ``half``
    stores float16 weights (``--fp16``); ``extra``: more converter arguments. The converter's
    output is captured; a failure is an :class:`ExportError` quoting its last lines."""
    tools = _converter()
    argv = ["mnnconvert", "-f", "ONNX", "--modelFile", str(onnx_path), "--MNNModel", str(mnn_path)]
    argv += ["--fp16"] if half else []
    with native_output() as output:
        tools.mnnconvert(argv + list(extra))  # returns True even when it fails: look for the file
    if not mnn_path.is_file() or mnn_path.stat().st_size == 0:
        said = [line.strip() for line in output().splitlines() if line.strip() and "device supports" not in line]
        raise ExportError(f"MNN's converter could not convert {onnx_path.name}: {' | '.join(said[-3:]) or 'no output'}")


def run_mnn_file(path: Path, threads: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    """The MNN file at ``path`` loaded once (float32 compute, ``threads`` CPU threads): a function
    of a float32 NCHW batch of one ``[1,3,H,W]`` (BGR 0-255, letterboxed: the ONNX input) that
    returns the outputs as numpy arrays in graph order."""
    run, _ = load_mnn_runner(path, threads)
    return run


def write_mnn(module: nn.Module, images: torch.Tensor, mnn_path: Path, options: ExportOptions,
              extra: Sequence[str] = ()) -> None:
    """Write ``module`` (from :func:`~.graph.export_module`) as an MNN file at ``mnn_path`` through
    a float ONNX graph beside it (``options.half``: float16 weights). No metadata, not atomic:
    callers write into a staging folder."""
    onnx_path = mnn_path.with_name(mnn_path.stem + ".float.onnx")
    write_onnx(module, images, onnx_path, options)
    convert_to_mnn(onnx_path, mnn_path, half=options.half, extra=extra)
    onnx_path.unlink()


def export_mnn(model: nn.Module, path: str | os.PathLike, options: ExportOptions,
               check: Callable[[Path], None] | None = None) -> ExportResult:
    """Write an MNN file to ``path`` (``.mnn``; its metadata goes to ``.mnn.json`` beside it).

    Raw (``[1, A, 5+C]``) or ``--decode``d graph, batch 1, static size; ``options.half`` stores
    float16 weights (computed in float32). The file is verified in MNN on the demo picture against
    PyTorch (a ``--half`` file on the anchors that score: :func:`~.edge.scored_anchors`), timed against
    the float ONNX graph in onnxruntime (same threads), passed to ``check`` (an accuracy gate that
    raises :class:`ExportError`) and only then moved into place.
    """
    check_edge_options("mnn", options)
    _converter()  # a missing package: one line before any work
    path = edge_path(path, ".mnn")
    module = export_module(model, options)
    images = sample_input(options.size, 1)
    expected = torch_outputs(module, images)
    with staging_dir(path) as workdir:
        staged = workdir / path.name
        write_mnn(module, images, staged, options)
        write_edge_sidecar(staged, module, options, "mnn", weights_precision(options))
        run = run_mnn_file(staged, torch.get_num_threads())
        return verify_and_place("mnn", module, options, images, expected, run, staged, path, check)
