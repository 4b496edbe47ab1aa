"""The ncnn backend (registered as ``ncnn``, the default for ``.param`` files written by ``yoloxkit
export --format ncnn``): ``STEM.param`` (the graph) with ``STEM.bin`` (the weights) beside it, run
by ncnn's CPU runtime image by image (its input is static, batch 1), with the official or the
``--decode`` interface (:mod:`.official`).

Precision: every file runs in float32 arithmetic. ncnn's defaults let it store activations and
weights in fp16 and compute in fp16 where the CPU has fp16 arithmetic (ARMv8.2 and later), and in
bf16 where asked; :data:`FP32_FLAGS` turns those options off on every CPU, so a float file's
detections match onnxruntime's anywhere. On x86 (the ncnn 1.0.20261020 wheel) the switches change
nothing: the outputs and the speed are the same with and without them. A ``--half`` file
(``precision`` float16) stores float16 weights in its ``.bin``; ncnn widens them to float32 when it
loads the file and computes in float32 like a float file: only the weights' rounding differs.

Lifetimes: ``ncnn.Mat`` built from a numpy array does not keep the array alive, and the
extractor does not keep the ``Mat`` alive: both are held until the output has been copied out
(dropping them earlier feeds ncnn freed memory: outputs off by 100% with no error).

ncnn reports a bad file from native code (``fopen ... failed``, ``ModelBin read weight_data
failed``) and returns an error code: an empty, garbage or truncated ``.param`` or ``.bin`` and a
missing ``.bin`` are one :class:`~yoloxkit.errors.InferenceError` line quoting that report (tested
in a child process). A hand-edited ``.param`` whose layers parse but do not fit each other can
still crash ncnn's native code when it runs; files yoloxkit writes are verified when written.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InferenceError, last_line
from ..optional import import_ncnn
from ..weights import ExportInfo
from ..native_output import native_output
from .edge_backend import EdgeBackend, Runner
from .registry import register_backend

__all__ = ["NcnnBackend", "FP32_FLAGS", "load_ncnn_runner"]

#: the ``ncnn.Option`` switches turned off so that every CPU computes in float32 (see above)
FP32_FLAGS = ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_packed", "use_bf16_storage")


def _load_net(ncnn: Any, param: Path, weights: Path, threads: int, label: str) -> Any:
    """An ``ncnn.Net`` with ``param`` and ``weights`` loaded for ``threads`` threads in float32."""
    if not param.is_file():
        raise InferenceError(f"ncnn model not found: {label}")
    if not weights.is_file():
        raise InferenceError(f"{label} needs its weights {weights.name} beside it (not found)")
    net = ncnn.Net()
    for flag in FP32_FLAGS:
        setattr(net.opt, flag, False)
    net.opt.num_threads = int(threads)
    with native_output() as said:
        status = net.load_param(str(param))
    if status != 0:
        reason = last_line(said(), "its layers do not parse")
        raise InferenceError(f"ncnn cannot read {label}: not a valid ncnn .param file ({reason})")
    with native_output() as said:
        status = net.load_model(str(weights))
    if status != 0:
        reason = last_line(said(), "load_model failed")
        raise InferenceError(f"ncnn cannot read the weights {weights.name} of {label}: corrupt, truncated or"
                             f" not this graph's ({reason})")
    return net


def load_ncnn_runner(path: str | os.PathLike, threads: int,
                     label: str | None = None) -> tuple[Runner, int]:
    """Load the ncnn model ``path`` (``.param``, its weights the ``.bin`` beside it) once for
    ``threads`` CPU threads in float32 (:data:`FP32_FLAGS`); returns ``(run, num_outputs)``:
    ``run`` maps a float32 NCHW batch of one ``[1,3,H,W]`` (BGR 0-255, letterboxed: the ONNX
    input) to the outputs as numpy arrays in graph order, each with its batch axis (ncnn drops
    it: ``[A, 5+C]`` comes back as ``[1, A, 5+C]``). Input and output blob names come from the
    ``.param`` (pnnx writes ``in0``, ``out0``). An unreadable file is an :class:`InferenceError`
    naming it."""
    ncnn = import_ncnn()
    path = Path(path)
    label = label or str(path)
    net = _load_net(ncnn, path, path.with_suffix(".bin"), threads, label)
    inputs, outputs = list(net.input_names()), list(net.output_names())
    if len(inputs) != 1 or not outputs:
        raise InferenceError(f"{label} is not a YOLOX export: expected one input and at least one output blob")
    lock = threading.Lock()

    def run(images: np.ndarray) -> list[np.ndarray]:
        if images.ndim != 4 or images.shape[0] != 1:
            raise InferenceError(f"{label} runs one image at a time: got a batch of shape {images.shape}")
        image = np.ascontiguousarray(images[0], dtype=np.float32)
        results = []
        with lock:
            mat = ncnn.Mat(image)  # held (with ``image``) until the outputs are copied: see the module doc
            with net.create_extractor() as extractor:
                extractor.input(inputs[0], mat)
                for name in outputs:
                    status, out = extractor.extract(name)
                    if status != 0:
                        raise InferenceError(f"ncnn could not run {label} (extracting {name!r} failed)")
                    results.append(np.array(out, dtype=np.float32)[None])
            del mat
        return results

    return run, len(outputs)


class NcnnBackend(EdgeBackend):
    """ncnn's CPU runtime on a ``.param``/``.bin`` pair (float32 arithmetic), one image at a time
    at the file's static size."""

    name, kind, runtime, files, quantizer = "ncnn", "ncnn", "ncnn", "ncnn .param/.bin files", "ncnn"

    def load(self, export: ExportInfo, threads: int) -> tuple[Runner, int]:
        return load_ncnn_runner(export.path, threads, self._label)


register_backend("ncnn", NcnnBackend.factory())
