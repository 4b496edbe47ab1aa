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
from ..infer.registry import Backend

__all__ = ["EVAL_CONF", "EVAL_NMS", "CompiledOpenVinoBackend", "compiled_accuracy", "detector_accuracy", "file_accuracy"]



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
