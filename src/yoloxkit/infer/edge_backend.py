"""What the edge runtimes' backends share (ncnn, MNN, LiteRT: :mod:`.ncnn_backend`,
:mod:`.mnn_backend`, :mod:`.litert_backend`): they run the file ``yoloxkit export`` wrote, one
image at a time at its static size, in float32 unless the file is INT8, and refuse anything else
in one line."""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import InferenceError
from ..weights import ExportInfo
from .device import resolve_device
from .official import DETECTION_INTERFACES, predictions_from_outputs
from .registry import Backend, BackendFactory, file_precision

__all__ = ["EdgeBackend", "Runner", "model_file"]

#: a loaded file as a function of a float32 NCHW batch of one image -> its outputs in graph order
Runner = Callable[[np.ndarray], "list[np.ndarray]"]


def model_file(path: str | os.PathLike, label: str, runtime: str, what: str) -> Path:
    """``path`` as a :class:`Path`, checked to be a file with content: :class:`InferenceError`
    ``RUNTIME model not found: LABEL`` or ``LABEL is empty: not WHAT`` (``an MNN model``)."""
    path = Path(path)
    if not path.is_file():
        raise InferenceError(f"{runtime} model not found: {label}")
    if path.stat().st_size == 0:
        raise InferenceError(f"{label} is empty: not {what}")
    return path


class EdgeBackend(Backend):
    """An edge runtime on its own file (threads follow ``torch.get_num_threads()``). Subclasses
    name the runtime and load the file (:meth:`load`)."""

    #: the format of the files it runs (``ncnn``, ``mnn``, ``tflite``), in words, and its INT8 tool
    kind: str = ""
    runtime: str = ""
    files: str = ""  # "ncnn .param/.bin files"
    quantizer: str = ""

    def __init__(self, export: ExportInfo, device: str | torch.device = "cpu", threads: int | None = None) -> None:
        self.device = resolve_device(device)
        if self.device.type != "cpu":
            raise InferenceError(f"the {self.name} backend runs on the CPU here; use --device cpu")
        self._label = str(export.path)
        if export.interface in DETECTION_INTERFACES:
            raise InferenceError(f"{self._label} is an --{export.interface} export; {self.runtime} files hold the raw"
                                 " or --decode graph")
        if not export.num_classes:
            raise InferenceError(f"{self._label}: its metadata does not give the class count")
        self.interface = export.interface
        self.num_classes = int(export.num_classes)
        self.precision = file_precision(export, self.quantizer)
        self.fixed_size = export.fixed_size or export.input_size
        self._run, outputs = self.load(export, int(threads or torch.get_num_threads()))
        if outputs != 1:
            raise InferenceError(f"{self._label} is not a YOLOX export: {outputs} outputs, expected 1")

    @abstractmethod
    def load(self, export: ExportInfo, threads: int) -> tuple[Runner, int]:
        """The file loaded for ``threads`` threads: its runner and its number of outputs."""

    def infer(self, batch: np.ndarray) -> torch.Tensor:
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        height, width = batch.shape[1:3]
        if self.fixed_size is not None and (height, width) != tuple(self.fixed_size):
            raise InferenceError(f"{self._label} runs at {self.fixed_size[0]}x{self.fixed_size[1]},"
                                 f" not {height}x{width}")
        images = batch.transpose(0, 3, 1, 2).astype(np.float32)
        outputs = [self._run(images[i : i + 1])[0] for i in range(len(images))]
        stacked = torch.from_numpy(np.concatenate(outputs))
        return predictions_from_outputs([stacked], self.interface, (height, width), self.num_classes, self._label)

    @classmethod
    def factory(cls) -> BackendFactory:
        """The registry factory: it runs this runtime's files only (given as ``export``)."""

        def make(*, model=None, onnx_path=None, size=None, device="cpu", export: ExportInfo | None = None) -> Backend:
            if export is None or export.kind != cls.kind:
                given = f"{export.path} ({export.kind})" if export is not None else onnx_path or "a PyTorch model"
                raise InferenceError(f"the {cls.name} backend runs {cls.files}, not {given}; make one with"
                                     f" `yoloxkit export --format {cls.kind}`")
            return cls(export, device)

        return make
