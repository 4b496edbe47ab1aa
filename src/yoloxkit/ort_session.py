"""The one place that opens ONNX Runtime sessions (the backend, export checks, ONNX import)."""

from __future__ import annotations

import os
from typing import Any, Sequence

__all__ = ["ort_session", "CPU_PROVIDERS"]

CPU_PROVIDERS = ("CPUExecutionProvider",)


def ort_session(
    source: str | os.PathLike | bytes,
    threads: int | None = None,
    providers: Sequence[Any] | None = None,
    log_severity: int | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` on an ONNX file or its bytes, all graph optimisations on.

    ``threads`` sets the intra-op thread count (None or 0: onnxruntime's default);
    ``providers`` defaults to the CPU; ``log_severity`` (e.g. 3: errors only) quiets the log.
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
    return ort.InferenceSession(model, options, providers=list(providers or CPU_PROVIDERS))
