"""The LiteRT backend (registered as ``litert``, the default for ``.tflite`` files written by
``yoloxkit export --format tflite``): the file run by the LiteRT interpreter
(``ai_edge_litert``, with its XNNPACK CPU delegate), image by image (its input is static,
batch 1), with the official or the ``--decode`` interface (:mod:`.official`).

The file's input is the export graph's ``[1, 3, H, W]`` float32 (BGR 0-255, letterboxed); its
layout and type are read from the interpreter, so a file whose input or output is quantised
(int8/uint8 with a scale and zero point) is fed and read back in float all the same. The INT8
files yoloxkit writes keep float input and output (:mod:`yoloxkit.quantize.tflite_int8`).

LiteRT prints from native code when it builds an interpreter (``INFO: Created TensorFlow Lite
XNNPACK delegate for CPU.``): :func:`native_output` captures it, so that normal runs stay quiet. The interpreter checks a file's flatbuffer before using it: an
empty, truncated or garbage file is one :class:`~yoloxkit.errors.InferenceError` line, never a
crash (tested in a child process).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ..errors import InferenceError, first_line
from ..optional import import_litert
from ..native_output import native_output
from ..weights import ExportInfo
from .edge_backend import EdgeBackend, Runner, model_file
from .registry import register_backend

__all__ = ["LiteRtBackend", "Runner", "open_interpreter", "litert_runner"]


def open_interpreter(path: str | os.PathLike, threads: int, label: str | None = None) -> Any:
    """The LiteRT interpreter of the ``.tflite`` file at ``path`` for ``threads`` CPU threads,
    tensors allocated; an unreadable file is an :class:`InferenceError` naming it."""
    litert = import_litert()
    label = label or str(path)
    path = model_file(path, label, "LiteRT", "a LiteRT (.tflite) model")
    try:
        with native_output():
            interpreter = litert.Interpreter(model_path=str(path), num_threads=int(threads))
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:  # the flatbuffer check, or an op LiteRT cannot prepare
        raise InferenceError(f"LiteRT cannot read {label}: {first_line(exc)}") from None
    return interpreter


def _to_tensor(images: np.ndarray, detail: dict) -> np.ndarray:
    """A float32 NCHW batch as the interpreter's input: transposed to NHWC for a channels-last
    input, quantised with the input's scale and zero point for an integer one."""
    shape = tuple(int(d) for d in detail["shape"])
    if shape[-1] == 3 and shape[1] != 3:
        images = images.transpose(0, 2, 3, 1)
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu":
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        images = np.clip(np.round(images / scale) + zero, info.min, info.max)
    return np.ascontiguousarray(images, dtype=dtype)


def _from_tensor(values: np.ndarray, detail: dict) -> np.ndarray:
    """An output as float32 (dequantised for an integer output)."""
    if np.dtype(detail["dtype"]).kind in "iu":
        scale, zero = detail["quantization"]
        return (values.astype(np.float32) - zero) * np.float32(scale)
    return np.array(values, dtype=np.float32)


#: a float32 NCHW batch of one ``[1,3,H,W]`` -> the outputs in graph order

def litert_runner(interpreter: Any, label: str = "model") -> tuple[Runner, tuple[int, int]]:
    """``(run, (h, w))``: ``run`` feeds a float32 NCHW batch of one ``[1,3,H,W]`` (BGR 0-255,
    letterboxed) to ``interpreter`` and returns its outputs as float32 numpy arrays in graph
    order (one call at a time: a lock guards the interpreter); ``(h, w)`` is its static input size."""
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    if len(inputs) != 1 or not outputs:
        raise InferenceError(f"{label} is not a YOLOX export: expected one input and at least one output")
    shape = tuple(int(d) for d in inputs[0]["shape"])
    if len(shape) != 4 or shape[0] != 1 or 3 not in (shape[1], shape[3]):
        raise InferenceError(f"{label} is not a YOLOX export: expected an input [1, 3, H, W], got {list(shape)}")
    size = shape[2:4] if shape[1] == 3 else shape[1:3]
    lock = threading.Lock()

    def run(images: np.ndarray) -> list[np.ndarray]:
        tensor = _to_tensor(np.asarray(images, dtype=np.float32), inputs[0])
        with lock:
            interpreter.set_tensor(inputs[0]["index"], tensor)
            interpreter.invoke()
            return [_from_tensor(interpreter.get_tensor(out["index"]), out) for out in outputs]

    return run, (int(size[0]), int(size[1]))


class LiteRtBackend(EdgeBackend):
    """The LiteRT interpreter on a ``.tflite`` file, one image at a time at the file's static size."""

    name, kind, runtime, files, quantizer = "litert", "tflite", "LiteRT", ".tflite files", "ai-edge-quantizer"

    def load(self, export: ExportInfo, threads: int) -> tuple[Runner, int]:
        interpreter = open_interpreter(export.path, threads, self._label)
        run, size = litert_runner(interpreter, self._label)
        if self.fixed_size is not None and tuple(self.fixed_size) != size:
            raise InferenceError(f"{self._label} has an input of {size[0]}x{size[1]} but its metadata says"
                                 f" {self.fixed_size[0]}x{self.fixed_size[1]}")
        self.fixed_size = size
        return run, len(interpreter.get_output_details())


register_backend("litert", LiteRtBackend.factory())
