"""Comparing an INT8 file with its float graph in the same runtime: the largest output
difference on a few calibration images and the median latency of each, on this machine."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..export.mnn import run_mnn_file
from ..export.ncnn import run_ncnn_file
from ..export.openvino import compile_openvino, run_openvino
from ..export.tflite import run_tflite_file
from ..export.verify import max_abs_diff
from ..ort_session import ort_session

__all__ = ["Comparison", "compare_files", "file_runner", "TIMED_CALLS"]

TIMED_CALLS = 10  # calls of each file timed for the speed-up the export reports


def file_runner(fmt: str, path: Path, threads: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    """The file compiled once in its runtime with ``threads`` threads, as a function of a batch."""
    edge_runner = {"ncnn": run_ncnn_file, "mnn": run_mnn_file, "tflite": run_tflite_file}.get(fmt)
    if edge_runner is not None:
        return edge_runner(path, threads)
    if fmt == "onnx":
        session = ort_session(path, threads=threads)
        name = session.get_inputs()[0].name
        return lambda images: session.run(None, {name: images})
    compiled = compile_openvino(path, threads=threads)
    return lambda images: run_openvino(compiled, images)


@dataclass(frozen=True)
class Comparison:
    """INT8 against float: max abs difference, the float values' magnitude, median latencies."""

    max_abs_diff: float
    scale: float
    float_ms: float
    int8_ms: float


def compare_files(fmt: str, float_path: Path, int8_path: Path, batches: list[np.ndarray], scores_only: bool,
                  threads: int | None = None) -> Comparison:
    """Max abs difference between the float and INT8 outputs (``scores_only``: the objectness and
    class scores of a ``[B, A, 5+C]`` output), the float values' largest magnitude, and the median
    latency of each file on the first batch (interleaved calls, after a warm-up)."""
    threads = int(threads or torch.get_num_threads())  # the export's threads: torch's
    run_float, run_int8 = file_runner(fmt, float_path, threads), file_runner(fmt, int8_path, threads)
    diffs, scale = [], 0.0
    for batch in batches:
        expected, actual = run_float(batch), run_int8(batch)
        if scores_only:
            expected, actual = [expected[0][..., 4:]], [actual[0][..., 4:]]
        diffs.append(max_abs_diff(expected, actual))
        scale = max([scale] + [float(np.max(np.abs(e))) for e in expected if e.size])
    times: dict[str, list[float]] = {"float": [], "int8": []}
    for _ in range(TIMED_CALLS):
        for key, run in (("float", run_float), ("int8", run_int8)):
            start = time.perf_counter()
            run(batches[0])
            times[key].append(time.perf_counter() - start)
    return Comparison(max(diffs), scale, 1e3 * float(np.median(times["float"])),
                       1e3 * float(np.median(times["int8"])))
