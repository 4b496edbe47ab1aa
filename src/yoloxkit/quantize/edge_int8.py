"""INT8 for the edge formats: LiteRT's ai-edge-quantizer (:mod:`.tflite_int8`), making the float
file and the INT8 file of the same graph, which :func:`~.export_int8.export_int8` compares in
LiteRT, measures and moves into place.

Not offered (docs/deploy.md): ncnn, whose INT8 tools are not in its pip packages, and MNN, whose
best recipe found (:mod:`.mnn_int8`, kept for the measurement in
``benchmarks/bench_edge_int8.py``) keeps 9.9 AP of float's 31.2 and runs slower than float on x86."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from ..errors import ExportError
from ..export.edge import require_converter
from ..export.options import ExportOptions
from ..optional import AI_EDGE_QUANTIZER, require_optional
from .tflite_int8 import TfliteInt8Recipe, quantize_tflite

__all__ = ["EDGE_INT8_FORMATS", "NOT_OFFERED", "EdgeInt8Recipes", "check_edge_int8", "quantize_edge"]

EDGE_INT8_FORMATS = ("tflite",)
#: why an edge format has no ``--int8``
NOT_OFFERED = {
    "ncnn": "ncnn's INT8 tools (ncnn2table, ncnn2int8) are not in the ncnn/pnnx pip packages",
    "mnn": ("MNN 3.6's quantiser keeps 9.9 AP of float's 31.2 with its best recipe (yolox-nano, coco-mini) and runs"
            " slower than float on x86 (docs/deploy.md)"),
}


@dataclass(frozen=True)
class EdgeInt8Recipes:
    """The recipe of each edge format that offers INT8 (defaults: the ones docs/deploy.md measured)."""

    tflite: TfliteInt8Recipe = field(default_factory=TfliteInt8Recipe)

    def of(self, fmt: str):
        return getattr(self, fmt)


def check_edge_int8(fmt: str) -> None:
    """:class:`ExportError` for ``--int8`` on ncnn and MNN (:data:`NOT_OFFERED`); the missing
    converter or quantiser of an edge format (:class:`~yoloxkit.errors.MissingDependencyError`),
    before any work."""
    if fmt in NOT_OFFERED:
        raise ExportError(f"--int8 is not offered for --format {fmt}: {NOT_OFFERED[fmt]}; use --format tflite, onnx"
                          " or openvino --int8" + (", or --half" if fmt == "mnn" else ""))
    if fmt in EDGE_INT8_FORMATS:
        require_converter(fmt)
    if fmt == "tflite":
        require_optional(*AI_EDGE_QUANTIZER)


def quantize_edge(model: nn.Module, fmt: str, options: ExportOptions, images: np.ndarray, work: Path,
                  recipes: EdgeInt8Recipes) -> tuple[Path, Path]:
    """The float and INT8 files of ``model`` in edge format ``fmt``, written into ``work`` with
    their metadata, calibrated on ``images`` (``[N,3,H,W]`` float32, letterboxed BGR 0-255)."""
    quantize = {"tflite": quantize_tflite}[fmt]
    return quantize(model, options, images, work, recipes.of(fmt))
