"""Multi-scale training: a new square input size every 10 iterations, the same on every rank."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

__all__ = ["size_for_iteration", "resize_batch", "RESIZE_EVERY"]

RESIZE_EVERY = 10


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
