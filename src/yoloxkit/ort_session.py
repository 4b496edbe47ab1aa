"""The one place that opens ONNX Runtime sessions (the backend, export checks, ONNX import)."""

from __future__ import annotations

import os
from typing import Any, Sequence

__all__ = ["ort_session", "CPU_PROVIDERS", "DISABLED_OPTIMIZERS"]

CPU_PROVIDERS = ("CPUExecutionProvider",)
#: onnxruntime's ``WeightBiasQuantization`` (1.2x) quantises the weights of the convs an INT8
#: export keeps in float whenever their input comes from a DequantizeLinear, which costs accuracy
#: the export measured without it; float graphs have no DequantizeLinear, so nothing else changes.
DISABLED_OPTIMIZERS = ("WeightBiasQuantization",)


def ort_session(
    source: str | os.PathLike | bytes,
    threads: int | None = None,
    providers: Sequence[Any] | None = None,
    log_severity: int | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` on an ONNX file or its bytes, all graph optimisations on.

    ``threads`` sets the intra-op thread count (None or 0: onnxruntime's default);
    ``providers`` defaults to the CPU; ``log_severity`` (e.g. 3: errors only) quiets the log.
    :data:`DISABLED_OPTIMIZERS` are off, so INT8 files run as they were measured.
    onnxruntime's own exceptions propagate (an ``ImportError`` when it is not installed).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if log_severity is not None:
        options.log_severity_level = int(log_severity)
    model = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(model, options, providers=list(providers or CPU_PROVIDERS),
                                disabled_optimizers=list(DISABLED_OPTIMIZERS))
