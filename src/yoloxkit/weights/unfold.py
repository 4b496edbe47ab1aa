"""Importing an official YOLOX ONNX export back into the PyTorch model (BatchNorm un-folding).

1. pair the export's convs with the model's (:mod:`.pairing`);
2. load each folded conv weight, and un-fold its BatchNorm: the BN running mean ``m`` and
   variance ``v`` are calibrated from that conv's outputs on real images (:mod:`.calibration`);
   ``gamma = sqrt(v + eps)`` and ``beta = folded_bias + m``. In eval mode the BN then adds exactly
   the folded bias, and in train mode batch statistics stay close to the calibrated ones, so
   fine-tuning is stable;
3. check the result against onnxruntime on one calibration image.

During calibration each BN is set to (mean 0, var 1 - eps, gamma 1, beta = folded bias): the
network then computes exactly the folded function, and one pass over the calibration images
collects every conv's per-channel statistics on the activations the real model sees.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import WeightsMismatchError
from ..ort_session import ort_session
from .calibration import CalibrationSource, ChannelStats, calibration_batch, calibration_items
from .onnx_reader import OnnxWeights, read_onnx_weights
from .pairing import batchnorm_of, pair_convs

__all__ = ["ImportReport", "import_onnx_into"]

logger = logging.getLogger("yoloxkit")

CALIBRATION_BATCH = 4


@dataclass(frozen=True)
class ImportReport:
    """Outcome of :func:`import_onnx_into`."""

    num_convs: int
    num_calibration_images: int
    max_abs_diff: float | None  # vs onnxruntime on one calibration image (None: not checked)


def _onnx_reference(weights: OnnxWeights, batch: np.ndarray) -> np.ndarray | None:
    """Run the ONNX file on ``batch`` [1, 3, h, w]; return the ``[1, A, 5 + C]`` output, if any."""
    session = ort_session(weights.path, threads=max(1, min(4, os.cpu_count() or 1)), log_severity=3)
    outputs = session.run(None, {weights.input_name: batch})
    for out in outputs:
        if out.ndim == 3 and out.shape[0] == batch.shape[0] and out.shape[2] == 5 + weights.num_classes:
            return out
    return None


def import_onnx_into(
    model: nn.Module,
    weights: OnnxWeights | str | os.PathLike,
    calib_images: CalibrationSource = None,
    size: tuple[int, int] | None = None,
    verify: bool = True,
    progress: bool = False,
) -> ImportReport:
    """Load an ONNX export's folded conv weights into ``model`` and un-fold its BatchNorms.

    ``calib_images``: BGR arrays, image paths or folders (default: the bundled demo picture).
    Images are letterboxed to ``size`` (default: the ONNX input size, else 416), as the model sees
    them. With ``verify``, the model's eval output is compared with onnxruntime on the first
    calibration image and a :class:`WeightsMismatchError` is raised if they disagree.
    """
    if not isinstance(weights, OnnxWeights):
        weights = read_onnx_weights(weights)
    if size is None:
        size = weights.input_hw or (416, 416)
    pairs = pair_convs(model, weights)
    batchnorms = batchnorm_of(model)
    items = calibration_items(calib_images)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        stats = _load_folded(pairs, batchnorms, weights)
        hooks = [conv.register_forward_hook(lambda _m, _i, out, s=statistic: s.update(out))
                 for conv, statistic in stats.items()]
        try:
            first_image = _run_calibration(model, items, size, progress)
        finally:
            for hook in hooks:
                hook.remove()
        _unfold(stats, batchnorms)
    max_diff = None
    if verify:
        max_diff = _verify(model, weights, first_image)
    model.train(was_training)
    return ImportReport(len(pairs), len(items), max_diff)


def _load_folded(pairs, batchnorms: dict, weights: OnnxWeights) -> dict[nn.Conv2d, ChannelStats]:
    """Copy each folded conv weight; put each BatchNorm in the calibration state (it adds exactly
    the folded bias); the statistics to collect, per conv followed by a BatchNorm."""
    stats: dict[nn.Conv2d, ChannelStats] = {}
    for name, conv, onnx_conv in pairs:
        conv.weight.copy_(torch.from_numpy(onnx_conv.weight))
        bias = torch.from_numpy(onnx_conv.bias) if onnx_conv.bias is not None else torch.zeros(conv.out_channels)
        bn = batchnorms.get(conv)
        if bn is None:
            if conv.bias is None:
                if bias.abs().max() > 0:
                    raise WeightsMismatchError(f"{weights.path}: conv {name} has no bias to take the ONNX bias")
            else:
                conv.bias.copy_(bias)
            continue
        if conv.bias is not None:
            conv.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
        bn.weight.fill_(1.0)
        bn.bias.copy_(bias)
        stats[conv] = ChannelStats()
    return stats


def _run_calibration(model: nn.Module, items, size: tuple[int, int], progress: bool) -> np.ndarray | None:
    """Run the calibration images through ``model`` in batches; the first image's input ``[1, 3, h, w]``."""
    param = next(model.parameters())
    batches = range(0, len(items), CALIBRATION_BATCH)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="calibrating BatchNorm", unit="batch")
    first_image = None
    for start in batches:
        batch = calibration_batch(items[start : start + CALIBRATION_BATCH], size)
        first_image = batch[:1] if first_image is None else first_image
        model(torch.from_numpy(batch).to(param.device, param.dtype))
    return first_image


def _unfold(stats: dict[nn.Conv2d, ChannelStats], batchnorms: dict) -> None:
    """Each BatchNorm from its conv's statistics: ``gamma = sqrt(v + eps)``, ``beta += m``."""
    for conv, statistic in stats.items():
        bn = batchnorms[conv]
        mean = statistic.mean.to(bn.running_mean.dtype)
        var = statistic.var.to(bn.running_var.dtype)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(statistic.var + bn.eps).to(bn.weight.dtype))
        bn.bias.add_(mean)
        bn.num_batches_tracked.zero_()


def _verify(model: nn.Module, weights: OnnxWeights, batch: np.ndarray) -> float | None:
    """Compare the model's eval output with onnxruntime's on ``batch``; raise if they disagree."""
    if weights.input_hw is not None and tuple(batch.shape[2:]) != weights.input_hw:
        return None
    reference = _onnx_reference(weights, batch)
    if reference is None:
        logger.info("%s: no [B, A, 5 + C] output to check the import against", weights.path)
        return None
    head = getattr(model, "head", None)
    decode = getattr(head, "decode_in_inference", None)
    param = next(model.parameters())
    best = float("inf")
    try:
        for decoded in (False, True):  # exports come with or without in-graph decoding
            if head is not None:
                head.decode_in_inference = decoded
            with torch.no_grad():
                ours = model(torch.from_numpy(batch).to(param.device, param.dtype)).float().cpu().numpy()
            if ours.shape == reference.shape:
                best = min(best, float(np.abs(ours - reference).max()))
            if best <= 1e-3:
                break
    finally:
        if head is not None and decode is not None:
            head.decode_in_inference = decode
    scale = max(1.0, float(np.abs(reference).max()))
    if not best <= 1e-3 * scale:
        raise WeightsMismatchError(
            f"{weights.path}: the imported model does not reproduce the ONNX outputs (max abs diff {best:.3g});"
            " the file may not be a YOLOX export of this model"
        )
    return best
