"""LiteRT (TFLite) export: ``STEM.tflite`` with its metadata in ``STEM.tflite.json`` beside it,
converted from the PyTorch module by ``litert-torch`` (the graph's NCHW float32 input kept) and
verified in the LiteRT interpreter.

``--half`` stores the weights of the convolutions in float16 (``ai-edge-quantizer``'s
``float_casting`` weight-only recipe): the file is about half the size, and LiteRT dequantises the
weights once when it loads the file, so the arithmetic stays float32. The float16 rounding of the
weights alone moves nano's raw box outputs by up to about 5% of their largest value, so a
``--half`` file is checked on the anchors that score, within :data:`HALF_RTOL`.

Conversion never reaches the network (``litert-torch`` imports ``transformers`` lazily and this
path does not). It runs in a child process (:mod:`.tflite_convert`: the converter imports JAX,
which makes later forks of the converting process unsafe), with its progress lines and native
logs captured; a failed conversion quotes the last line they printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import ExportError, first_line
from ..infer.edge_backend import Runner
from ..infer.litert_backend import litert_runner, open_interpreter
from ..native_output import native_output
from ..io import staging_dir
from ..optional import CONVERTERS, import_ai_edge_quantizer, import_litert, require_optional
from .edge import check_edge_options, edge_path, verify_and_place, weights_precision, write_edge_sidecar
from .graph import export_module
from .options import ExportOptions, ExportResult
from .tflite_convert import convert_tflite
from .verify import sample_input, torch_outputs

__all__ = ["export_tflite", "run_tflite_file", "convert_tflite", "float16_weights"]


def float16_weights(float_file: Path, target: Path) -> Path:
    """Write ``target``: ``float_file`` with the weights of its convolutions stored in float16
    (``ai-edge-quantizer``'s weight-only ``float_casting``; the arithmetic stays float32)."""
    aeq = import_ai_edge_quantizer()
    from ai_edge_quantizer import algorithm_manager, qtyping  # noqa: PLC0415 (optional, imported above)

    quantizer = aeq.Quantizer(str(float_file))
    quantizer.add_weight_only_config(
        regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
        algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING,
    )
    try:
        with native_output():
            result = quantizer.quantize(enable_progress_bar=False, enable_progress_report=False)
    except Exception as exc:  # the quantiser raises ValueError/RuntimeError for what it cannot cast
        raise ExportError(f"ai-edge-quantizer cannot store {float_file.name} with float16 weights: {first_line(exc)}") from None
    target.write_bytes(bytes(result.quantized_model))
    return target


def run_tflite_file(path: str | os.PathLike, threads: int) -> Runner:
    """The ``.tflite`` file at ``path`` loaded once in LiteRT with ``threads`` threads: a function
    of a float32 NCHW batch of one ``[1,3,H,W]`` (BGR 0-255, letterboxed: the ONNX input)
    returning the outputs as numpy arrays in graph order."""
    run, _ = litert_runner(open_interpreter(path, threads), str(path))
    return run


def export_tflite(model: nn.Module, path: str | os.PathLike, options: ExportOptions,
                  check: Callable[[Path], None] | None = None) -> ExportResult:
    """Write the LiteRT file ``path`` (``.tflite``; its metadata goes to ``path.json``) of
    ``model``'s raw or ``--decode`` graph, batch 1 at ``options.size``, float32 or with fp16
    weights (``options.half``).

    The file is verified in LiteRT against PyTorch on the demo picture, timed against the float
    ONNX graph in onnxruntime (both with ``torch.get_num_threads()`` threads), passed to ``check``
    (an accuracy gate that raises :class:`ExportError`) and only then moved into place with its
    metadata; nothing is left behind when a step fails.
    """
    check_edge_options("tflite", options)
    require_optional(*CONVERTERS["tflite"])
    import_litert()
    if options.half:
        import_ai_edge_quantizer()
    path = edge_path(path, ".tflite")
    module = export_module(model, options)
    images = sample_input(options.size, 1)
    expected = torch_outputs(module, images)
    with staging_dir(path) as work:
        staged = work / path.name
        float_file = convert_tflite(module, images, work / "float.tflite" if options.half else staged)
        if options.half:
            float16_weights(float_file, staged)
        write_edge_sidecar(staged, module, options, "tflite", weights_precision(options))
        run = run_tflite_file(staged, torch.get_num_threads())
        return verify_and_place("tflite", module, options, images, expected, run, staged, path, check)
