"""What the edge-format writers (ncnn, MNN, LiteRT: :mod:`.ncnn`, :mod:`.mnn`, :mod:`.tflite`)
share: the options they hold, the metadata they write beside the file, the onnxruntime reference
they are timed against, and moving the verified files into place.

These runtimes run a static graph of batch 1 without NMS: ``--nms``, ``--topk``, ``--dynamic``
and ``--batch-size`` > 1 are refused before any work; yoloxkit's post-processing does the NMS.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..infer.defaults import EVAL_CONF
from ..optional import CONVERTERS, require_optional
from ..ort_session import ort_session
from ..weights.sidecar import sidecar_path, write_sidecar
from .graph import export_entries
from .onnx import write_onnx
from .options import ExportOptions, ExportResult, output_names
from .verify import check_close

__all__ = [
    "EDGE_RUNTIMES", "HALF_RTOL", "TIMED_CALLS", "check_edge_options", "edge_entries", "median_ms", "require_converter",
    "move_into_place", "onnxruntime_reference", "scored_anchors", "write_edge_sidecar", "edge_path",
    "verify_and_place", "weights_precision",
]

#: the runtime of each edge format, in words
EDGE_RUNTIMES = {"ncnn": "ncnn", "mnn": "MNN", "tflite": "LiteRT"}
#: ``check_close``'s tolerance for ``--half`` files, on the anchors that score (:func:`scored_anchors`).
#: Float16 weights move nano's scored rows on dog.jpg by up to 6% of the output scale (raw outputs,
#: sizes 224-640: MNN's ``--fp16``, which also rounds the biases; LiteRT's float16 weights 2.7% at
#: 256, 0.7% at 416; the same as PyTorch with its conv weights rounded to float16), and cost at most
#: 0.19 AP (coco-mini val2017, 416); a broken conversion moves them by the whole scale.
HALF_RTOL = 0.1
TIMED_CALLS = 10


def require_converter(fmt: str) -> None:
    """:class:`~yoloxkit.errors.MissingDependencyError` with the install line when the converter
    of edge format ``fmt`` is missing (checked before any model is loaded, without importing it)."""
    require_optional(*CONVERTERS[fmt])


def check_edge_options(fmt: str, options: ExportOptions) -> None:
    """:class:`ExportError` for what an edge format does not hold, before any work."""
    runtime = EDGE_RUNTIMES.get(fmt, fmt)
    if options.nms or options.topk:
        flag = "--topk" if options.topk else "--nms"
        raise ExportError(f"{flag} is not offered for --format {fmt}: the {runtime} file holds the network"
                          " (and --decode); yoloxkit, or your code on the device, applies NMS to its output")
    if options.dynamic:
        raise ExportError(f"--dynamic is not offered for --format {fmt}: {runtime} files have a static input;"
                          " export one file per input size")
    if options.batch != 1:
        raise ExportError(f"--batch-size {options.batch} is not offered for --format {fmt}: {runtime} files"
                          " run one image at a time (batch 1)")


def edge_entries(module: nn.Module, options: ExportOptions, fmt: str, precision: str = "float32",
                 quantization: dict | None = None) -> dict[str, str]:
    """The sidecar entries of an edge file (:mod:`yoloxkit.weights.sidecar`): the metadata every
    export stores (:func:`~.graph.export_entries`), its ``format`` and ``precision``
    (``float32``, ``float16`` or ``int8``) and, for INT8 files, the recipe as JSON."""
    entries = export_entries(module, options)
    entries.update(format=fmt, precision=precision)
    if quantization is not None:
        entries["quantization"] = json.dumps({"precision": precision, **quantization})
    return entries


def scored_anchors(expected: list[np.ndarray], actual: list[np.ndarray],
                   conf: float = EVAL_CONF) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The rows ``[K, 5+C]`` of the anchors whose reference score (objectness x best class
    probability) reaches ``conf`` (the evaluation threshold: every anchor that can become a
    detection), of one ``[1, A, 5+C]`` output each; ``--half`` files are checked on these.

    Float16 weights and biases move the raw box outputs of background anchors, far from any
    object, by up to 0.7 (nano at 416 on the demo picture: MNN's ``--fp16``; rounding the ONNX
    initializers to float16 in onnxruntime: 0.4), and those of the scored anchors by up to 6% of
    the output scale. Outputs of other counts or shapes are returned as they are (and fail)."""
    if len(expected) != 1 or len(actual) != 1 or expected[0].shape != actual[0].shape or expected[0].ndim != 3:
        return expected, actual
    ref, out = expected[0], actual[0]
    keep = ref[..., 4] * ref[..., 5:].max(-1) >= conf
    return [ref[keep]], [out[keep]]


def median_ms(run: Callable[[np.ndarray], object], images: np.ndarray, calls: int = TIMED_CALLS) -> float:
    """Median latency of ``run(images)`` in milliseconds, after one warm-up call."""
    run(images)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run(images)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def onnxruntime_reference(module: nn.Module, images: torch.Tensor, options: ExportOptions, workdir: Path,
                          threads: int) -> tuple[Callable[[np.ndarray], list[np.ndarray]], float]:
    """The float ONNX graph of ``module`` written into ``workdir`` and run by onnxruntime with
    ``threads`` threads: its runner (a float32 NCHW batch -> outputs) and its median latency on
    ``images`` in ms, the figure an edge export is compared with."""
    path = Path(workdir) / "reference.onnx"
    write_onnx(module, images, path, options)
    session = ort_session(path, threads=threads)
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> list[np.ndarray]:
        return session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})

    return run, median_ms(run, images.numpy())


def move_into_place(staged_model: Path, target: Path, companions: Iterable[str] = ()) -> None:
    """Move a verified edge file, its sidecar and its ``companions`` (suffixes of files beside it
    with the same stem: ncnn's ``.bin``) from the staging folder onto ``target``; the model file
    goes last, so that a reader never finds it without its metadata."""
    for suffix in companions:
        os.replace(staged_model.with_suffix(suffix), target.with_suffix(suffix))
    os.replace(sidecar_path(staged_model), sidecar_path(target))
    os.replace(staged_model, target)


def edge_path(path: str | os.PathLike, suffix: str) -> Path:
    """``path`` with the format's suffix (``.param``, ``.mnn``, ``.tflite``) if it has another."""
    path = Path(path)
    return path if path.suffix == suffix else path.with_suffix(suffix)


def verify_and_place(fmt: str, module: nn.Module, options: ExportOptions, images: torch.Tensor,
                     expected: list[np.ndarray], run: Callable[[np.ndarray], list[np.ndarray]], staged: Path,
                     target: Path, check: Callable[[Path], None] | None = None,
                     companions: Iterable[str] = ()) -> ExportResult:
    """The end of every edge export: the staged file (its sidecar written beside it), run by
    ``run`` on ``images``, compared with PyTorch's ``expected`` outputs (a ``--half`` file on the
    anchors that score, within :data:`HALF_RTOL`), timed against the same graph in onnxruntime,
    passed to ``check`` (an accuracy gate that raises :class:`ExportError`), and only then moved
    onto ``target``; what it reports."""
    runtime = EDGE_RUNTIMES[fmt]
    actual = run(images.numpy())
    if options.half:
        diff = check_close(*scored_anchors(expected, actual), f"{runtime} (float16 weights)", rtol=HALF_RTOL)
    else:
        diff = check_close(expected, actual, runtime)
    ms = median_ms(run, images.numpy())
    _, reference_ms = onnxruntime_reference(module, images, options, staged.parent, torch.get_num_threads())
    if check is not None:
        check(staged)
    move_into_place(staged, target, companions)
    return ExportResult(target, fmt, output_names(options), diff, runtime, precision=weights_precision(options),
                        ms=ms, reference_ms=reference_ms, reference_runtime="onnxruntime")


def weights_precision(options: ExportOptions) -> str:
    """``float16`` for ``--half``, else ``float32``: the precision an edge export's sidecar records."""
    return "float16" if options.half else "float32"


def write_edge_sidecar(staged_model: Path, module: nn.Module, options: ExportOptions, fmt: str,
                       precision: str = "float32", quantization: dict | None = None) -> Path:
    """Write :func:`edge_entries` beside ``staged_model``; the sidecar's path."""
    return write_sidecar(staged_model, edge_entries(module, options, fmt, precision, quantization))
