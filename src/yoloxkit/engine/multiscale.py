"""Multi-scale training: a new square input size every 10 iterations, the same on every rank."""

from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F

from ..models import get_spec
from .recipes import training_recipe

__all__ = ["size_for_iteration", "resize_batch", "describe_input", "RESIZE_EVERY"]

RESIZE_EVERY = 10


def describe_input(cfg: Any, multiscale: bool) -> str:
    """The log line's model and input sizes of the resolved ``cfg`` (``multiscale``: whether the
    size changes during training). A fixed official range (nano and tiny: 320-640) that ignores a
    ``--size`` other than the model's own says so, and how to train at that size."""
    line = f"model {cfg.model}, input {cfg.size}x{cfg.size}"
    if not multiscale:
        return line
    low, high = cfg.size_range
    line += f", multi-scale {low}-{high}"
    official = training_recipe(cfg.model).train_size_range
    if cfg.multiscale_range is None and official is not None and (low, high) == tuple(official) \
            and cfg.size != get_spec(cfg.model).input_size:
        line += (f" ({cfg.model}'s official range, which --size does not change: {cfg.size} is the evaluation size"
                 f" and that of the first {RESIZE_EVERY} iterations; --multiscale-range N trains at {cfg.size} +- N*32,"
                 f" --no-multiscale at {cfg.size} only)")
    return line


def size_for_iteration(iteration: int, base_size: int, size_range: tuple[int, int], seed: int, enabled: bool = True) -> int:
    """Input size of global iteration ``iteration``: the base size for the first
    ``RESIZE_EVERY`` iterations, then a multiple of 32 in ``size_range`` drawn from a generator
    keyed by ``(seed, iteration // RESIZE_EVERY)`` — identical on every rank without communication
    and reproducible after ``--resume``."""
    if not enabled or iteration < RESIZE_EVERY:
        return base_size
    low, high = (int(v) // 32 for v in size_range)
    rng = random.Random(f"{seed}-multiscale-{iteration // RESIZE_EVERY}")
    return 32 * rng.randint(low, high)


def resize_batch(images: torch.Tensor, targets: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinearly resize a square-padded batch ``[B,3,S,S]`` to ``size`` and scale the target
    boxes ``[B,M,5]`` (class, cx, cy, w, h) with it."""
    current = images.shape[-1]
    if size == current and images.shape[-2] == size:
        return images, targets
    scale_y = size / images.shape[-2]
    scale_x = size / images.shape[-1]
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    targets = targets.clone()
    targets[..., 1] *= scale_x
    targets[..., 3] *= scale_x
    targets[..., 2] *= scale_y
    targets[..., 4] *= scale_y
    return images, targets
