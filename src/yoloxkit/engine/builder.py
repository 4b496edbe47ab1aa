"""Everything a training run is made of, built from a resolved :class:`TrainConfig`.

:func:`build_components` resolves the starting weights (first, so that a missing download
fails before anything else), reads the data splits, builds the training pipeline, the model with
its criterion (initialised from the pretrained weights unless ``weights="none"``), the EMA, the
optimizer, the learning-rate schedule and the grad scaler, and finally wraps the model for DDP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..data import DetectionData
from ..errors import DatasetError
from ..data.augment import AugmentConfig
from ..data.dataset import TrainingDataset
from ..data.loader import collate
from ..losses import YoloxLoss
from ..models import build_model
from ..trainable import attach_loss
from ..weights import WeightsSource, resolve_weights_source
from . import distributed as dist_utils
from .class_rows import fit_class_rows
from .config import TrainConfig
from .data import TrainPipeline, build_train_pipeline, epoch_seed, load_splits, seed_everything
from .ema import ModelEMA
from .finetune import load_for_finetune, rescale_folded_convs
from .freeze import freeze_detector, freeze_trunk, keep_frozen_eval
from .optim import build_optimizer
from .run_dir import resolve_run_dir
from .schedule import WarmupCosineSchedule
from .state import Stateful

__all__ = ["TrainComponents", "build_components", "preflight", "starting_weights", "describe_recipe"]

#: at most this many training images are used to fit new class rows
FIT_IMAGES = 256


@dataclass
class TrainComponents:
    """The parts of one training run (on one process)."""

    train_data: DetectionData
    val_data: DetectionData | None
    names: list[str]
    pipeline: TrainPipeline
    iters_per_epoch: int
    model: nn.Module  # the bare model, on the device
    criterion: YoloxLoss  # the model's loss; the loop turns its L1 term on
    ema: ModelEMA | None
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosineSchedule
    scaler: torch.amp.GradScaler
    train_model: nn.Module  # what the loop calls: the model, or its DDP wrapper

    def train_mode(self) -> None:
        """Put the model in training mode, frozen parts staying in eval mode."""
        self.model.train()
        keep_frozen_eval(self.model)

    @property
    def inference_model(self) -> nn.Module:
        """The weights that are evaluated and saved as ``"model"``: the EMA when there is one."""
        return self.ema.module if self.ema else self.model

    def stateful(self) -> dict[str, Stateful | None]:
        """The parts a resumable checkpoint saves and restores, by their ``train_state`` key
        (``None``: the run has no such part)."""
        return {
            "model": self.model,
            "ema": self.ema,
            "optimizer": self.optimizer,
            "schedule": self.schedule,
            "scaler": self.scaler if self.scaler.is_enabled() else None,
            "criterion": self.criterion,
        }


def _load_data(cfg: TrainConfig, log: Callable[[str], None]) -> tuple[DetectionData, DetectionData | None]:
    train_data, val_data = load_splits(cfg, need_val=cfg.eval_interval > 0)
    log(
        f"data: {len(train_data.records)} training images ({train_data.format}, split"
        f" {train_data.split})" + (f", {len(val_data.records)} validation images (split {val_data.split})" if val_data else "")
        + f", {len(train_data.names)} classes"
    )
    return train_data, val_data


def _repair_warning(data: DetectionData, warnings: list[str]) -> str | None:
    """One line for the boxes the training dataset repairs (clipped, dropped), with an example."""
    if not warnings:
        return None
    issues = [i for i in getattr(data, "issues", []) or [] if getattr(i, "severity", "") == "warning"]
    example = f"; e.g. {issues[0]}" if issues else ""
    return f"warning: {'; '.join(warnings)}{example} (`yoloxkit check-data` lists every problem)"


def starting_weights(cfg: TrainConfig) -> WeightsSource | None:
    """Where a run's weights come from: ``None`` for random weights (``"none"``) and on resume,
    else ``--weights`` (a path or a zoo name) or, without it, the model's COCO weights (bundled
    for yolox-nano, the cached official download otherwise). Offline without a cached file it
    raises :class:`~yoloxkit.errors.DownloadError` naming the URL, ``--weights PATH`` and
    ``--weights none``."""
    if cfg.resume or cfg.from_scratch:
        return None
    return resolve_weights_source(cfg.model, cfg.weights, scratch_hint=True)


def preflight(cfg: TrainConfig) -> WeightsSource | None:
    """The checks that must fail before anything else, in seconds: the options are valid, the
    dataset path exists, the output folder holds no other run and the starting weights are there (a missing download is tried, and
    fails with one line, now). Returns :func:`starting_weights`."""
    cfg = cfg.resolved()
    if not Path(cfg.data).expanduser().exists():  # before a download that may take minutes
        raise DatasetError(f"{cfg.data}: dataset path does not exist")
    resolve_run_dir(cfg.out, cfg.resume, cfg.exist_ok)  # an --out holding another run is refused now
    return starting_weights(cfg)


def describe_recipe(cfg: TrainConfig) -> str:
    """One line naming the recipe of the resolved ``cfg`` and what it changes."""
    plain = cfg.epochs - cfg.no_aug_start_epoch
    schedule = (f"warm-up {cfg.warmup_epochs:g} epoch{'' if cfg.warmup_epochs == 1 else 's'},"
                f" the last {plain} epoch{'' if plain == 1 else 's'} without Mosaic/MixUp and with L1")
    if cfg.recipe == "official":
        return f"recipe official (the official YOLOX recipe: {schedule})"
    parts = [schedule]
    if cfg.freeze_detector:
        parts.append("detector frozen, only the PSS branch trains" + ("" if cfg.ema else ", no EMA"))
    elif cfg.freeze_trunk:
        parts.append("backbone and neck frozen")
    if cfg.loss_normalizer == "running":
        parts.append("losses divided by a running mean of the positives")
    if cfg.fit_new_classes:
        parts.append("new class rows fitted on the training labels")
    if cfg.ema and not cfg.ema_ramp:
        parts.append(f"EMA {cfg.ema_decay:g} from the starting weights")
    if cfg.eval_start:
        parts.append("the starting weights evaluated as epoch 0")
    return f"recipe finetune ({'; '.join(parts)}); --recipe official for the official recipe"


def _fit_batches(cfg: TrainConfig, data: DetectionData):
    """Un-augmented training batches (at most :data:`FIT_IMAGES` images) for fitting class rows."""
    dataset = TrainingDataset(data, cfg.size, AugmentConfig.off(), seed=cfg.seed, progress=False)
    count = min(len(dataset), FIT_IMAGES)
    step = max(1, cfg.batch_size)
    for start in range(0, count, step):
        yield collate([dataset[i] for i in range(start, min(count, start + step))])


def _build_model(
    cfg: TrainConfig,
    start: Path | None,
    data: DetectionData,
    dist: dist_utils.DistInfo,
    log: Callable[[str], None],
) -> tuple[nn.Module, YoloxLoss]:
    """The model with its criterion, initialised from ``start`` (if any), on the device."""
    names = list(data.names)
    model = build_model(cfg.model, num_classes=len(names))
    criterion = attach_loss(model)
    criterion.normalizer = cfg.loss_normalizer or "batch"
    criterion.pss_targets = cfg.pss_targets
    if start is not None:
        report = load_for_finetune(model, start, names, cfg.model)
        log(f"fine-tuning: {report.message()}")
        rescale = cfg.rescale_convs if cfg.rescale_convs is not None else report.from_onnx
        if rescale:
            changed = rescale_folded_convs(model)
            log(
                f"fine-tuning: rescaled {changed} BN-folded conv kernels to ordinary norms (same function;"
                " keeps SGD at the official lr from wrecking them; --no-rescale-convs turns this off)"
            )
        rows = [names.index(n) for n in report.new_classes]
        if rows and cfg.fit_new_classes:
            fit = fit_class_rows(model, rows, _fit_batches(cfg, data), torch.device("cpu"))
            log(f"fine-tuning: {fit.message(names)}")
    if cfg.freeze_detector:
        count = freeze_detector(model)
        criterion.detector_loss = False
        log(f"end-to-end: detector frozen ({count / 1e6:.2f} M parameters), only the PSS branch trains")
    elif cfg.freeze_trunk:
        count = freeze_trunk(model)
        log(f"fine-tuning: backbone and neck frozen ({count / 1e6:.2f} M parameters; --no-freeze-trunk trains them)")
    if cfg.sync_bn and dist.distributed:
        if dist.device.type == "cuda":
            model = dist_utils.convert_sync_bn(model)
            log("SyncBatchNorm on")
        else:
            log("warning: --sync-bn needs CUDA devices; BatchNorm statistics are averaged at each epoch end instead")
    model.to(dist.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, criterion


def build_components(
    cfg: TrainConfig,
    dist: dist_utils.DistInfo,
    log: Callable[[str], None],
    restore: Callable[[TrainComponents], None] | None = None,
) -> TrainComponents:
    """Build the run of the resolved ``cfg`` for process ``dist``; ``log`` gets one line per
    notable choice. ``restore`` (``--resume``) is called before the model is wrapped for DDP,
    so that every process starts from the restored weights."""
    start = preflight(cfg)
    if cfg.resume:
        log(f"{describe_recipe(cfg)}")
    elif start is None:
        log(f"weights: random initialisation (--weights none); {describe_recipe(cfg)}")
    else:
        log(f"weights: {start.describe()}; {describe_recipe(cfg)}")
    seed_everything(epoch_seed(cfg.seed, -1, 0))  # identical initial weights on every rank
    train_data, val_data = _load_data(cfg, log)
    names = list(train_data.names)
    pipeline = build_train_pipeline(cfg, train_data, dist.rank, dist.world_size)
    repaired = _repair_warning(train_data, pipeline.warnings)
    if repaired:
        log(repaired)
    if len(train_data.records) < cfg.batch_size:
        log(f"warning: the training split has {len(train_data.records)} images, fewer than one batch of"
            f" {cfg.batch_size}; every batch repeats images")
    iters_per_epoch = len(pipeline)
    if cfg.max_iters_per_epoch:
        iters_per_epoch = min(iters_per_epoch, cfg.max_iters_per_epoch)

    model, criterion = _build_model(cfg, start.path if start else None, train_data, dist, log)
    schedule = WarmupCosineSchedule(
        base_lr=cfg.lr,
        iters_per_epoch=iters_per_epoch,
        epochs=cfg.epochs,
        warmup_epochs=cfg.warmup_epochs,
        no_aug_epochs=cfg.no_aug_epochs,
        min_lr_ratio=cfg.min_lr_ratio,
        warmup_lr=cfg.warmup_lr,
    )
    use_amp = cfg.amp and dist.device.type == "cuda"
    parts = TrainComponents(
        train_data=train_data,
        val_data=val_data,
        names=names,
        pipeline=pipeline,
        iters_per_epoch=iters_per_epoch,
        model=model,
        criterion=criterion,
        ema=ModelEMA(model, cfg.ema_decay, cfg.ema_ramp) if cfg.ema else None,
        optimizer=build_optimizer(model, cfg.lr, cfg.momentum, cfg.weight_decay),
        schedule=schedule,
        scaler=torch.amp.GradScaler("cuda", enabled=use_amp),
        train_model=model,
    )
    if cfg.amp and not use_amp:
        log("warning: --amp needs a CUDA device; training in float32")
    if restore is not None:
        restore(parts)
    parts.train_model = dist_utils.wrap_ddp(model, dist)
    return parts
