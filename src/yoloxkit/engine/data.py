"""The trainer's view of the data: dataset loading, the training loader, per-epoch seeding.

The readers, transforms and loader live in :mod:`yoloxkit.data`; this module only wires them
to the training configuration. Seeding scheme: at the start of epoch ``e`` every generator
(python, numpy, torch) is seeded from ``(seed, e, rank)``, the sampler shuffles from
``(seed, e)`` (:class:`yoloxkit.data.loader.EpochSampler`: ``ceil(N / batch_size)`` full
batches, as the official trainer runs) and each sample draws its augmentation from
``(seed, e, index)`` (:class:`yoloxkit.data.dataset.TrainingDataset`), so an epoch yields the
same batches whether or not the run was interrupted before it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data import DetectionData, load_dataset
from ..data.dataset import TrainingDataset
from ..data.loader import EpochSampler, build_loader
from ..errors import DatasetError
from .config import ConfigError, TrainConfig
from .interrupts import ignore_interrupts

__all__ = ["epoch_seed", "seed_everything", "load_splits", "TrainPipeline", "build_train_pipeline"]


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 31-bit seed for epoch ``epoch`` of process ``rank``."""
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % (2**31 - 1)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def load_splits(cfg: TrainConfig, need_val: bool = True) -> tuple[DetectionData, DetectionData | None]:
    """Read the training split and (when evaluation is on) the validation split; fatal data
    problems raise :class:`~yoloxkit.errors.DatasetError` naming the file here, before training."""
    train = load_dataset(cfg.data, split=cfg.train_split, default_prefix="train", names=cfg.names)
    if not any(len(record.class_ids) for record in train.records):
        source = train.annotation_file or train.root
        raise DatasetError(f"{source}: the training split {train.split!r} has no boxes to train on "
                           "(every image is background)")
    val = None
    if need_val:
        val = load_dataset(cfg.data, split=cfg.val_split, default_prefix="val", names=cfg.names or train.names)
    return train, val


@dataclass
class TrainPipeline:
    """The training dataset and its loader for one process."""

    dataset: TrainingDataset
    loader: DataLoader
    sampler: EpochSampler
    batch_size: int  # per process
    warnings: list[str]

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle and the samples of ``epoch``; from the config's
        :attr:`~TrainConfig.no_aug_start_epoch` on, the dataset leaves out Mosaic and MixUp."""
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)


def build_train_pipeline(cfg: TrainConfig, data: DetectionData, rank: int = 0, world: int = 1) -> TrainPipeline:
    """The augmented :class:`~yoloxkit.data.dataset.TrainingDataset` of the resolved ``cfg`` and
    its loader for process ``rank`` of ``world`` (the batch size is the total over processes)."""
    if cfg.batch_size % world:
        raise ConfigError(f"--batch-size {cfg.batch_size} must be divisible by the {world} processes")
    per_rank = cfg.batch_size // world
    dataset = TrainingDataset(data, cfg.size, cfg.augment_config(), seed=cfg.seed, cache=bool(cfg.cache_ram),
                              progress=bool(cfg.progress), close_mosaic_at=cfg.no_aug_start_epoch)
    loader, sampler = build_loader(
        dataset,
        per_rank,
        workers=cfg.workers,
        seed=cfg.seed,
        rank=rank,
        world_size=world,
        pin_memory=cfg.device is not None and cfg.device.startswith("cuda"),
    )
    if cfg.workers:
        loader.worker_init_fn = ignore_interrupts  # Ctrl-C reaches the main process's loop only
    warnings = list(dataset.warnings)
    return TrainPipeline(dataset, loader, sampler, per_rank, warnings)


def batch_to_tensors(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [B,3,S,S] float32, targets [B,M,5])`` from whatever the collate returns."""
    if isinstance(batch, dict):
        return batch["images"], batch["targets"]
    return batch[0], batch[1]
