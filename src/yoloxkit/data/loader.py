"""Batching for training: collate to a float32 CHW batch with padded targets, and a DataLoader
factory with DistributedSampler support.

Multi-scale training resizes whole batches; the trainer owns that step
(:func:`yoloxkit.engine.multiscale.size_for_iteration` draws a size every 10 iterations from a
generator keyed by ``(seed, iteration // 10)``, so every DDP rank picks the same size without
communication, and :func:`yoloxkit.engine.multiscale.resize_batch` resizes images and targets).
:func:`multiscale_sizes` lists the sizes a model trains at.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

__all__ = ["collate", "build_loader", "multiscale_sizes"]


def collate(batch: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(uint8 HWC image, [n_i, 5] targets), ...]`` -> ``(float32 [B, 3, H, W] BGR 0-255,
    float32 [B, M, 5])`` where M is the largest ``n_i`` (zero rows pad the shorter ones)."""
    height, width = np.asarray(batch[0][0]).shape[:2]
    planes = np.empty((len(batch), 3, height, width), dtype=np.float32)
    for i, sample in enumerate(batch):
        # per-channel copies of contiguous planes are much faster than a strided HWC->CHW cast
        for channel, plane in enumerate(cv2.split(np.asarray(sample[0]))):
            planes[i, channel] = plane
    batch_images = torch.from_numpy(planes)
    rows = max((len(sample[1]) for sample in batch), default=0)
    targets = torch.zeros((len(batch), rows, 5), dtype=torch.float32)
    for i, sample in enumerate(batch):
        labels = np.asarray(sample[1], dtype=np.float32).reshape(-1, 5)
        targets[i, : len(labels)] = torch.from_numpy(labels)
    return batch_images, targets


def build_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int = 4,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
    drop_last: bool = True,
    pin_memory: bool = False,
) -> tuple[DataLoader, DistributedSampler]:
    """A DataLoader over ``dataset`` for process ``rank`` of ``world_size`` (1 for a single
    process). The sampler is a :class:`DistributedSampler` seeded with ``seed``: call
    ``sampler.set_epoch(e)`` (and ``dataset.set_epoch(e)``) before each epoch; workers are not
    persistent so that they pick up the new epoch."""
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        collate_fn=collate, drop_last=drop_last and len(sampler) >= batch_size,
                        pin_memory=pin_memory, persistent_workers=False)
    return loader, sampler


def multiscale_sizes(base: int, size_range: tuple[int, int] | None = None, steps: int = 5) -> list[int]:
    """The multiples of 32 a model trains at: ``size_range`` (e.g. nano/tiny (320, 640)) or
    ``base`` +- ``steps`` * 32."""
    low, high = size_range if size_range is not None else (base - 32 * steps, base + 32 * steps)
    return list(range(max(32, int(low) // 32 * 32), int(high) // 32 * 32 + 1, 32))
