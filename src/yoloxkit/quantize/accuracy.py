"""The accuracy an export keeps: COCO AP (or VOC mAP) of an exported file, or of an OpenVINO
model NNCF is compiling, on a validation split, through yoloxkit's own inference pipeline with
the official evaluation thresholds."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data import DetectionData
from ..evaluate import evaluate
from ..infer import Detector
from ..infer.defaults import EVAL_CONF, EVAL_NMS
from ..infer.official import predictions_from_outputs
from ..errors import ExportError
from ..infer.registry import Backend
from ..infer.torch_backend import TorchBackend

__all__ = [
    "EVAL_CONF", "EVAL_NMS", "CompiledOpenVinoBackend", "accuracy_gate", "compiled_accuracy", "detector_accuracy",
    "file_accuracy", "model_accuracy",
]



def detector_accuracy(detector: Detector, data: DetectionData, progress: bool = False) -> float:
    """AP in percent (COCO AP@[.5:.95], or VOC mAP@0.5 for VOC data) of ``detector`` on ``data``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown classes and skipped images are the caller's report
        result = evaluate(detector, data, conf=EVAL_CONF, nms=EVAL_NMS, progress=progress)
    return float(result.primary)


def file_accuracy(path: str | os.PathLike, backend: str, data: DetectionData, size: tuple[int, int],
                  progress: bool = False) -> float:
    """AP in percent of the export at ``path`` run by ``backend`` at ``size`` on ``data``."""
    detector = Detector(weights=Path(path), backend=backend, size=size, conf=EVAL_CONF, nms=EVAL_NMS)
    return detector_accuracy(detector, data, progress)


class CompiledOpenVinoBackend(Backend):
    """A compiled OpenVINO model with the float ``[B,3,H,W]`` input of the export graph (as NNCF
    hands it to a validation function), run ``static_batch`` images at a time."""

    name = "openvino"

    def __init__(self, compiled: Any, num_classes: int, interface: str, static_batch: int = 1) -> None:
        self._compiled = compiled
        self.num_classes = int(num_classes)
        self.interface = interface
        self._step = int(static_batch)

    def infer(self, batch: np.ndarray) -> torch.Tensor:
        images = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        count = len(images)
        if count % self._step:
            images = np.concatenate([images, np.repeat(images[-1:], self._step - count % self._step, 0)])
        runs = []
        for start in range(0, len(images), self._step):
            result = self._compiled(images[start : start + self._step])
            runs.append([np.asarray(result[out]) for out in self._compiled.outputs])
        outputs = [torch.from_numpy(np.concatenate(parts))[:count] for parts in zip(*runs)]
        return predictions_from_outputs(outputs, self.interface, tuple(batch.shape[1:3]), self.num_classes,
                                        "the model being quantised")


def compiled_accuracy(compiled: Any, data: DetectionData, size: tuple[int, int], names: Sequence[str],
                      interface: str, static_batch: int = 1) -> float:
    """AP in percent of a compiled OpenVINO model (the export graph's input) on ``data``."""
    backend = CompiledOpenVinoBackend(compiled, len(names), interface, static_batch)
    detector = Detector.from_backend(backend, size, names=names, conf=EVAL_CONF, nms=EVAL_NMS,
                                     batch_size=max(8, static_batch))
    return detector_accuracy(detector, data)


def model_accuracy(model: torch.nn.Module, data: DetectionData, size: tuple[int, int], names: Sequence[str]) -> float:
    """AP in percent of an in-memory PyTorch model (float32, CPU) on ``data`` at ``size``."""
    backend = TorchBackend(model.eval())
    detector = Detector.from_backend(backend, size, names=names, conf=EVAL_CONF, nms=EVAL_NMS)
    return detector_accuracy(detector, data)


def accuracy_gate(model: torch.nn.Module, names: Sequence[str], size: tuple[int, int], data: DetectionData,
                  backend: str, max_drop: float | None, report=None):
    """A check for :func:`~yoloxkit.export.export_model` (``--val-data [--max-ap-drop X]`` on an
    edge export): it measures the AP of the float PyTorch model and of the staged file in
    ``backend`` on ``data``, reports both, and raises :class:`ExportError` (the export then
    writes nothing) when the file loses more than ``max_drop`` AP points."""
    say = report or (lambda line: None)

    def check(staged: Path) -> None:
        say(f"measuring AP on {data.root} {data.split} ({len(data.records)} images): PyTorch float, then the"
            f" exported file in {backend}")
        reference = model_accuracy(model, data, size, names)
        measured = file_accuracy(staged, backend, data, size)
        drop = reference - measured
        say(f"AP {measured:.2f} in {backend} vs {reference:.2f} PyTorch float (drop {drop:.2f})")
        if max_drop is not None and drop > max_drop:
            raise ExportError(f"export refused: AP {measured:.2f} is {drop:.2f} below PyTorch float {reference:.2f},"
                              f" over --max-ap-drop {max_drop:g}; nothing written")

    return check
