"""Batching for training: collate to a float32 CHW batch with padded targets, the epoch sampler,
and a DataLoader factory.

An epoch is ``ceil(N / B)`` iterations of full batches (``B`` the batch size over all processes),
as with the official ``InfiniteSampler`` + ``YoloBatchSampler``: :class:`EpochSampler` lists
every image once in a shuffled order and fills the last batch with images from a second shuffle
of the same epoch. The list depends only on ``(seed, epoch)``, so an interrupted epoch replays
the same batches, and process ``rank`` of ``world_size`` takes every ``world_size``-th entry,
as the official sampler does. Remaining differences from the official code: each epoch draws
its own independent shuffles instead of continuing one endless stream (where the next epoch
goes on with the shuffle that filled the previous epoch's last batch), and under DDP the count
is ``ceil(N / B)`` rather than the official ``ceil((N // world_size) / (B / world_size))``
(the same with one process), so that every image is seen each epoch.

Multi-scale training resizes whole batches; the trainer owns that step
(:func:`yoloxkit.engine.multiscale.size_for_iteration` draws a size every 10 iterations from a
generator keyed by ``(seed, iteration // 10)``, so every DDP rank picks the same size without
communication, and :func:`yoloxkit.engine.multiscale.resize_batch` resizes images and targets).
:func:`multiscale_sizes` lists the sizes a model trains at.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["collate", "EpochSampler", "build_loader", "multiscale_sizes"]

_SAMPLER_STREAM = 0x5A4D  # spawn key that keeps the shuffles apart from the per-sample generators


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


class EpochSampler(Sampler[int]):
    """The indices process ``rank`` of ``world_size`` trains on in one epoch: ``iterations``
    full batches of ``batch_size`` (per process), every index at least once per epoch.

    The epoch's list (:meth:`epoch_indices`) is a shuffle of ``range(size)`` followed by as much
    of further shuffles as fills ``iterations * batch_size * world_size`` places (without
    ``shuffle``: ``0, 1, ..., size - 1, 0, 1, ...``); it depends only on ``(seed, epoch)``.
    Call :meth:`set_epoch` before each epoch.
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        if size < 1:
            raise ValueError(f"EpochSampler: size must be at least 1, got {size}")
        if batch_size < 1:
            raise ValueError(f"EpochSampler: batch_size must be at least 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"EpochSampler: rank {rank} is not one of world_size {world_size} processes")
        if seed < 0:
            raise ValueError(f"EpochSampler: seed must be non-negative, got {seed}")
        self.size, self.batch_size, self.seed = int(size), int(batch_size), int(seed)
        self.rank, self.world_size, self.shuffle = int(rank), int(world_size), bool(shuffle)
        self.epoch = 0

    @property
    def iterations(self) -> int:
        """Batches per epoch: ``ceil(size / (batch_size * world_size))``."""
        return math.ceil(self.size / (self.batch_size * self.world_size))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose indices the sampler yields."""
        if epoch < 0:
            raise ValueError(f"EpochSampler: epoch must be non-negative, got {epoch}")
        self.epoch = int(epoch)

    def epoch_indices(self, epoch: int | None = None) -> np.ndarray:
        """The whole list of ``epoch`` (default: the current one) over all processes."""
        epoch = self.epoch if epoch is None else int(epoch)
        total = self.iterations * self.batch_size * self.world_size
        if not self.shuffle:
            return np.resize(np.arange(self.size, dtype=np.int64), total)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch], spawn_key=(_SAMPLER_STREAM,)))
        shuffles = [rng.permutation(self.size) for _ in range(math.ceil(total / self.size))]
        return np.concatenate(shuffles)[:total]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.rank:: self.world_size].tolist())

    def __len__(self) -> int:
        return self.iterations * self.batch_size


def build_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int = 4,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
    pin_memory: bool = False,
) -> tuple[DataLoader, EpochSampler]:
    """A DataLoader over ``dataset`` for process ``rank`` of ``world_size`` (1 for a single
    process), ``batch_size`` images per process, ``ceil(len(dataset) / (batch_size *
    world_size))`` full batches per epoch (:class:`EpochSampler`, seeded with ``seed``). Call
    ``sampler.set_epoch(e)`` (and ``dataset.set_epoch(e)``) before each epoch; workers are not
    persistent so that they pick up the new epoch."""
    sampler = EpochSampler(len(dataset), batch_size, seed=seed, rank=rank, world_size=world_size, shuffle=shuffle)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate,
                        drop_last=False, pin_memory=pin_memory, persistent_workers=False)
    return loader, sampler


def multiscale_sizes(base: int, size_range: tuple[int, int] | None = None, steps: int = 5) -> list[int]:
    """The multiples of 32 a model trains at: ``size_range`` (e.g. nano/tiny (320, 640)) or
    ``base`` +- ``steps`` * 32."""
    low, high = size_range if size_range is not None else (base - 32 * steps, base + 32 * steps)
    return list(range(max(32, int(low) // 32 * 32), int(high) // 32 * 32 + 1, 32))
