"""Latency and throughput of a :class:`~yoloxkit.Detector`: end to end (decoded images to
detections) and the network alone. Used by ``yoloxkit benchmark`` and ``benchmarks/``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .imaging import letterbox_batch

__all__ = ["TimingStats", "time_calls", "summarize", "detector_timers", "BenchmarkRow", "format_table", "cpu_features"]

#: the instruction sets that decide which precision is fast on a CPU, as /proc/cpuinfo names them
_FEATURES = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
             ("avx512_bf16", "AVX-512 BF16"), ("avx512_fp16", "AVX-512 FP16"), ("amx_bf16", "AMX-BF16"),
             ("amx_int8", "AMX-INT8"), ("asimddp", "NEON dot product"), ("fphp", "NEON fp16"))


def cpu_features(cpuinfo: str | None = None) -> str:
    """The CPU's model name and the features of :data:`_FEATURES` it has, from ``/proc/cpuinfo``
    (or the text given), e.g. ``Intel(R) Xeon(R) Processor; AVX2, AVX-512, AVX-512 VNNI, AMX-INT8``;
    ``unknown CPU`` where it cannot be read."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return "unknown CPU"
    name, flags = "unknown CPU", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and name == "unknown CPU":
            name = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    found = [label for flag, label in _FEATURES if flag in flags]
    return f"{name}; {', '.join(found) or 'none of ' + ', '.join(label for _, label in _FEATURES[:4])}"


@dataclass(frozen=True)
class TimingStats:
    """Per-call wall times of one workload (milliseconds), and images per second."""

    median_ms: float
    p90_ms: float
    images_per_s: float
    calls: int
    best_ms: float = 0.0  # fastest call: the least disturbed by other load on the machine


def time_calls(fn: Callable[[], object], iters: int, warmup: int = 0) -> np.ndarray:
    """Run ``fn`` ``warmup`` times untimed, then ``iters`` times; return seconds per call."""
    for _ in range(warmup):
        fn()
    times = np.empty(iters, dtype=np.float64)
    for i in range(iters):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times


def summarize(seconds: Sequence[float] | np.ndarray, batch_size: int) -> TimingStats:
    """Median and 90th percentile latency per call; throughput from the median."""
    seconds = np.asarray(seconds, dtype=np.float64)
    if seconds.size == 0:
        raise ValueError("no timings to summarize")
    median = float(np.median(seconds))
    return TimingStats(
        median * 1e3,
        float(np.percentile(seconds, 90)) * 1e3,
        batch_size / median,
        int(seconds.size),
        float(seconds.min()) * 1e3,
    )


def detector_timers(detector, images: Sequence[np.ndarray]) -> tuple[Callable[[], object], Callable[[], object]]:
    """Two callables for ``images`` (decoded BGR arrays, one batch): the whole pipeline
    (letterbox, network, decode, NMS, :class:`Detections`) and the network alone on a
    pre-letterboxed batch."""
    arrays = list(images)
    batch, _ = letterbox_batch(arrays, detector.size)
    backend = detector.network

    def end_to_end() -> object:
        return detector.predict_arrays(arrays)

    def network() -> object:
        return backend.infer(batch)

    return end_to_end, network


@dataclass(frozen=True)
class BenchmarkRow:
    """One line of a benchmark table."""

    label: str
    model: str
    size: int
    batch: int
    end_to_end: TimingStats
    network: TimingStats | None = None
    baseline: TimingStats | None = None  # end-to-end timings of the baseline, for speed-up columns
    precision: str = ""  # what the network computed in (Backend.precision)


def format_table(rows: Sequence[BenchmarkRow]) -> str:
    """A Markdown table of the rows (speed-ups of the median and best call vs ``baseline``)."""
    lines = [
        "| model | size | batch | path | median ms | p90 ms | best ms | images/s | network-only median ms"
        " | speed-up (median) | speed-up (best) | precision |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        e2e = row.end_to_end
        network = f"{row.network.median_ms:.1f}" if row.network else "-"
        if row.baseline:
            speedups = f"{row.baseline.median_ms / e2e.median_ms:.2f}x | {row.baseline.best_ms / e2e.best_ms:.2f}x"
        else:
            speedups = "- | -"
        lines.append(
            f"| {row.model} | {row.size} | {row.batch} | {row.label} | {e2e.median_ms:.1f} | {e2e.p90_ms:.1f} |"
            f" {e2e.best_ms:.1f} | {e2e.images_per_s:.1f} | {network} | {speedups} | {row.precision or '-'} |"
        )
    return "\n".join(lines)
