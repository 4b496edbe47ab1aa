"""Checking an export against PyTorch: a real sample input and the max abs difference."""

from __future__ import annotations

from importlib import resources
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..imaging import letterbox

__all__ = ["sample_input", "torch_outputs", "max_abs_diff", "check_close", "canonical_detections"]


def _letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The inference letterbox as CHW float32 (BGR, 0-255)."""
    canvas, _ = letterbox(image, size)
    return canvas.transpose(2, 0, 1).astype(np.float32)


def sample_input(size: tuple[int, int], batch: int = 1) -> torch.Tensor:
    """The bundled demo picture, letterboxed to ``size``; image ``k`` of the batch is flipped
    ``k`` times horizontally/vertically so that batch items differ."""
    data = resources.files("yoloxkit").joinpath("assets", "dog.jpg").read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    items = []
    for k in range(batch):
        variant = image if k % 3 == 0 else cv2.flip(image, k % 3 - 1)
        items.append(_letterbox(variant, size))
    return torch.from_numpy(np.stack(items))


def torch_outputs(module: nn.Module, images: torch.Tensor) -> list[np.ndarray]:
    """The module's outputs on ``images`` as a list of numpy arrays."""
    with torch.inference_mode():
        out = module(images)
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().cpu().numpy() for o in out]


def max_abs_diff(expected: Sequence[np.ndarray], actual: Sequence[np.ndarray]) -> float:
    """Largest absolute difference over all outputs (inf if their count or shapes differ). Equal
    non-finite values (the same infinity, NaN against NaN: a box ``exp`` overflowed in both) count
    as no difference; a non-finite value on one side only counts as an infinite one."""
    if len(expected) != len(actual):
        return float("inf")
    worst = 0.0
    for e, a in zip(expected, actual):
        e, a = np.asarray(e, dtype=np.float64), np.asarray(a, dtype=np.float64)
        if e.shape != a.shape:
            return float("inf")
        if not e.size:
            continue
        same = (e == a) | (np.isnan(e) & np.isnan(a))
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.abs(e - a))
        worst = max(worst, float(np.max(np.nan_to_num(diff, nan=np.inf, posinf=np.inf))))
    return worst


def canonical_detections(outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Reorder ``(num_dets, boxes, scores, class_ids)`` detections of each image by class and box
    corner, so that detections with tied scores (e.g. in the padding) compare equal in any order."""
    num_dets, boxes, scores, class_ids = (np.array(o) for o in outputs)
    for b in range(boxes.shape[0]):
        n = int(num_dets[b, 0])
        order = np.lexsort((boxes[b, :n, 1], boxes[b, :n, 0], class_ids[b, :n]))
        boxes[b, :n], scores[b, :n], class_ids[b, :n] = boxes[b, order], scores[b, order], class_ids[b, order]
    return [num_dets, boxes, scores, class_ids]


def check_close(
    expected: Sequence[np.ndarray],
    actual: Sequence[np.ndarray],
    runtime: str,
    detections: bool = False,
    rtol: float = 1e-3,
) -> float:
    """Return the max abs diff; raise :class:`ExportError` if it exceeds ``rtol`` times the
    largest reference magnitude (plus 1e-4). ``detections``: the outputs are padded NMS results,
    compared independently of the order of tied scores."""
    if detections and len(expected) == len(actual) == 4:
        expected, actual = canonical_detections(expected), canonical_detections(actual)
    diff = max_abs_diff(expected, actual)
    scale = max((float(np.max(np.abs(e))) for e in expected if e.size), default=1.0)
    if not diff <= rtol * max(scale, 1.0) + 1e-4:
        raise ExportError(
            f"the export does not reproduce PyTorch in {runtime}: max abs diff {diff:.3g} (scale {scale:.3g})"
        )
    return diff
