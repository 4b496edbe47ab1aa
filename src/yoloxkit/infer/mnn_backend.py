"""The MNN backend (registered as ``mnn``, the default for ``.mnn`` files written by ``yoloxkit
export --format mnn``): the file run by MNN's CPU runtime, image by image (its input is static,
batch 1), with the official or the ``--decode`` interface (:mod:`.official`).

Precision: the runtime is created with MNN's ``precision: "high"``, float32 arithmetic on every
CPU. ``"normal"`` and ``"low"`` let MNN use fp16 arithmetic on ARM CPUs that have it, and
``"lowBF16"`` bf16 in builds with bf16 kernels (MNN's documentation; not tested here). On this
x86 CPU (AVX-512, AMX) the MNN 3.6.1 wheel has neither: all four modes give the same outputs (max
abs diff 4.4e-4 against PyTorch, nano at 416) at the same speed. So ``"high"``, which keeps a
float file's detections equal to onnxruntime's on any CPU. A ``--half`` file stores float16
weights and computes in float32; an INT8 file computes its int8 layers in int8.

MNN prints from native code on import and when it builds a runtime (``The device supports: ...``,
``MNN use high precision``): :func:`native_output` captures those lines (file descriptors 1
and 2) so that normal runs stay quiet. MNN checks a model file's flatbuffer before using it: an
empty, truncated or garbage file is one :class:`~yoloxkit.errors.InferenceError` line, not a
crash (tested in a child process; 60 randomly truncated or byte-flipped copies of nano loaded or
failed cleanly).
"""

from __future__ import annotations

import os
import sys
import threading
from types import ModuleType


import numpy as np

from ..errors import InferenceError
from ..native_output import native_output
from ..optional import import_mnn
from ..weights import ExportInfo
from .edge_backend import EdgeBackend, Runner, model_file
from .registry import register_backend

__all__ = ["MnnBackend", "MNN_PRECISION", "import_mnn_quietly", "load_mnn_runner"]

#: MNN's CPU precision mode for every file yoloxkit runs: float32 arithmetic (see the module doc)
MNN_PRECISION = "high"


def import_mnn_quietly() -> ModuleType:
    """The ``MNN`` runtime module, imported without its native banner (MissingDependencyError
    with the install hint when it is missing). Only ``MNN`` itself: never ``MNN.tools``, whose
    scripts install a logging package with pip and send usage logs over the network."""
    loaded = sys.modules.get("MNN")
    if loaded is not None:
        return loaded
    with native_output():
        return import_mnn()


def load_mnn_runner(path: str | os.PathLike, threads: int, label: str | None = None) -> tuple[Runner, int]:
    """Load the MNN file at ``path`` once for ``threads`` CPU threads in float32 (``precision:
    "high"``); returns ``(run, num_outputs)``: ``run`` maps a float32 NCHW batch of one
    ``[1,3,H,W]`` (BGR 0-255, letterboxed) to the outputs as numpy arrays in graph order.
    An unreadable file is an :class:`InferenceError` naming it."""
    mnn = import_mnn_quietly()
    label = label or str(path)
    path = model_file(path, label, "MNN", "an MNN model")
    expr = mnn.expr
    config = {"backend": "CPU", "precision": MNN_PRECISION, "numThread": int(threads)}
    try:
        with native_output():
            runtime = mnn.nn.create_runtime_manager((config,))
            module = mnn.nn.load_module_from_file(str(path), [], [], runtime_manager=runtime)
        info = module.get_info()
    except Exception:  # MNN raises SystemError for a file that fails its flatbuffer check
        raise InferenceError(f"MNN cannot read {label}: not a valid MNN model (corrupt or truncated?)") from None
    if len(info.get("inputNames", ())) != 1 or not info.get("outputNames"):
        raise InferenceError(f"{label} is not a YOLOX export: expected one input and at least one output")
    lock = threading.Lock()

    def forward(images: np.ndarray) -> list:
        return module.forward([expr.const(images, list(images.shape), expr.NCHW)])

    def run(images: np.ndarray) -> list[np.ndarray]:
        images = np.ascontiguousarray(images, dtype=np.float32)
        with lock:
            outputs = forward(images)
            if not outputs:  # MNN printed why: run again to quote it
                with native_output() as said:
                    forward(images)
                reason = " | ".join(line.strip() for line in said().splitlines()[-2:] if line.strip())
                raise InferenceError(f"MNN cannot run {label} on a {list(images.shape)} input: {reason or 'no output'}")
            return [np.array(expr.convert(out, expr.NCHW).read(), dtype=np.float32) for out in outputs]

    return run, len(info["outputNames"])


class MnnBackend(EdgeBackend):
    """MNN's CPU runtime on a ``.mnn`` file (float32 arithmetic), one image at a time at the
    file's static size."""

    name, kind, runtime, files, quantizer = "mnn", "mnn", "MNN", ".mnn files", "MNN"

    def load(self, export: ExportInfo, threads: int) -> tuple[Runner, int]:
        return load_mnn_runner(export.path, threads, self._label)


register_backend("mnn", MnnBackend.factory())
