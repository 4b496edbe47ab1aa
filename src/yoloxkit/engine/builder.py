"""Everything a training run is made of, built from its :class:`~yoloxkit.engine.plan.RunPlan`.

:func:`build_components` reads the data splits, builds the training pipeline, the model with
its criterion (built whole, from the plan, and initialised from the pretrained weights unless
``weights="none"``), the EMA, the optimizer, the learning-rate schedule and the grad scaler,
and finally wraps the model for DDP. Nothing here resolves an option again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..data import DetectionData
from ..data.augment import AugmentConfig
from ..data.dataset import TrainingDataset
from ..data.loader import collate
from ..losses import YoloxLoss
from ..models import anchor_based, build_network, get_spec
from . import distributed as dist_utils
from .batchnorm_calibration import recalibrate_batchnorm
from .class_rows import fit_class_rows
from .config import TrainConfig
from .data import TrainPipeline, build_train_pipeline, epoch_seed, load_splits, seed_everything
from .ema import ModelEMA
from .finetune import load_for_finetune, rescale_folded_convs
from .freeze import freeze_detector, freeze_stages, freeze_trunk, keep_frozen_eval
from .optim import build_optimizer
from .plan import RunPlan, describe_recipe, plan_run, starting_weights
from .schedule import WarmupCosineSchedule
from .state import Stateful

__all__ = ["TrainComponents", "build_components", "preflight", "starting_weights", "describe_recipe"]

#: at most this many training images are used to fit new class rows and re-estimate BatchNorm statistics
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
    criterion: YoloxLoss  # the model's loss; :meth:`enter_epoch` turns its L1 term on (if not on from the start)
    ema: ModelEMA | None
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosineSchedule
    scaler: torch.amp.GradScaler
    train_model: nn.Module  # what the loop calls: the model, or its DDP wrapper
    no_aug_start_epoch: int = 0  # the one boundary: Mosaic/MixUp off and L1 on from this epoch

    def enter_epoch(self, epoch: int) -> bool:
        """Select the shuffle and samples of 0-based ``epoch``. From :attr:`no_aug_start_epoch`
        on the dataset leaves out Mosaic and MixUp and the criterion adds its L1 term: both
        switch here, together (L1 stays on when it ran from the start). Returns whether ``epoch``
        is the boundary itself (a run resumed past it does not cross it again)."""
        self.pipeline.set_epoch(epoch)
        if epoch < self.no_aug_start_epoch:
            return False
        self.criterion.use_l1 = True
        return epoch == self.no_aug_start_epoch

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


def preflight(cfg: TrainConfig):
    """The checks that must fail before anything else (:func:`~yoloxkit.engine.plan.plan_run`);
    returns the starting weights (:func:`starting_weights`)."""
    return plan_run(cfg).weights


def _fit_batches(cfg: TrainConfig, data: DetectionData):
    """Un-augmented training batches (at most :data:`FIT_IMAGES` images) for fitting class rows and
    re-estimating BatchNorm statistics. Each call decodes the images again: holding them between
    the two passes would take 0.5-1.2 GB at 256 images."""
    dataset = TrainingDataset(data, cfg.size, AugmentConfig.off(), seed=cfg.seed, progress=False)
    count = min(len(dataset), FIT_IMAGES)
    step = max(1, cfg.batch_size)
    for start in range(0, count, step):
        yield collate([dataset[i] for i in range(start, min(count, start + step))])


def _load_start(model: nn.Module, cfg: TrainConfig, start: Path, data: DetectionData, log: Callable[[str], None]) -> None:
    """Initialise ``model`` from the starting weights ``start`` (classes mapped by name)."""
    names = list(data.names)
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
    if rows and cfg.fit_new_classes and not anchor_based(model):
        fit = fit_class_rows(model, rows, _fit_batches(cfg, data), torch.device("cpu"))
        log(f"fine-tuning: {fit.message(names)}")


def _build_model(plan: RunPlan, data: DetectionData, log: Callable[[str], None]) -> tuple[nn.Module, YoloxLoss]:
    """The model with its criterion, initialised from the plan's starting weights (if any), on the device."""
    cfg, dist = plan.cfg, plan.dist
    model = build_network(cfg.model, num_classes=len(data.names))
    criterion = YoloxLoss(normalizer=cfg.loss_normalizer, pss_targets=cfg.pss_targets,
                          detector_loss=not cfg.freeze_detector, assigner=get_spec(cfg.model).assigner)
    model.criterion = criterion
    criterion.use_l1 = bool(cfg.l1_from_start)
    if plan.weights is not None:
        _load_start(model, cfg, plan.weights.path, data, log)
    if cfg.freeze_detector:
        count = freeze_detector(model)
        log(f"end-to-end: detector frozen ({count / 1e6:.2f} M parameters), only the PSS branch trains")
    elif cfg.freeze_trunk:
        count = freeze_trunk(model)
        log(f"fine-tuning: backbone and neck frozen ({count / 1e6:.2f} M parameters; --no-freeze-trunk trains them)")
    elif cfg.frozen_stages:
        count = freeze_stages(model, cfg.frozen_stages)
        log(f"fine-tuning: the first {cfg.frozen_stages} backbone stage(s) frozen ({count / 1e6:.3f} M parameters)")
    if cfg.sync_bn and dist.distributed:
        if dist.device.type == "cuda":
            model = dist_utils.convert_sync_bn(model)
            log("SyncBatchNorm on")
        else:
            log("warning: --sync-bn needs CUDA devices; BatchNorm statistics are averaged at each epoch end instead")
    model.to(dist.device)
    if plan.weights is not None and cfg.recalibrate_bn:
        changed = recalibrate_batchnorm(model, (images.float() for images, _ in _fit_batches(cfg, data)))
        log(f"fine-tuning: {changed} BatchNorm layers took the training images' statistics (same output;"
            " --no-recalibrate-bn keeps the weights' own)")
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, criterion


def _build_pipeline(plan: RunPlan, train_data: DetectionData, log: Callable[[str], None]) -> tuple[TrainPipeline, int]:
    """The training pipeline of this process and the iterations of an epoch."""
    cfg = plan.cfg
    pipeline = build_train_pipeline(cfg, train_data, plan.dist.rank, plan.dist.world_size)
    repaired = _repair_warning(train_data, pipeline.warnings)
    if repaired:
        log(repaired)
    if len(train_data.records) < cfg.batch_size:
        log(f"warning: the training split has {len(train_data.records)} images, fewer than one batch of"
            f" {cfg.batch_size}; every batch repeats images")
    iters_per_epoch = len(pipeline)
    if cfg.max_iters_per_epoch:
        iters_per_epoch = min(iters_per_epoch, cfg.max_iters_per_epoch)
    return pipeline, iters_per_epoch


def _starting_line(plan: RunPlan) -> str:
    start = plan.weights
    if plan.cfg.resume:
        return describe_recipe(plan.cfg)
    if start is None:
        return f"weights: random initialisation (--weights none); {describe_recipe(plan.cfg)}"
    return f"weights: {start.describe()}; {describe_recipe(plan.cfg)}"


def build_components(
    plan: RunPlan,
    log: Callable[[str], None],
    restore: Callable[[TrainComponents], None] | None = None,
) -> TrainComponents:
    """Build the run of ``plan`` for its process; ``log`` gets one line per notable choice.
    ``restore`` (``--resume``) is called before the model is wrapped for DDP, so that every
    process starts from the restored weights."""
    cfg = plan.cfg
    log(_starting_line(plan))
    seed_everything(epoch_seed(cfg.seed, -1, 0))  # identical initial weights on every rank
    train_data, val_data = _load_data(cfg, log)
    pipeline, iters_per_epoch = _build_pipeline(plan, train_data, log)
    model, criterion = _build_model(plan, train_data, log)
    schedule = WarmupCosineSchedule(
        base_lr=cfg.lr, iters_per_epoch=iters_per_epoch, epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
        no_aug_epochs=cfg.no_aug_epochs, min_lr_ratio=cfg.min_lr_ratio, warmup_lr=cfg.warmup_lr,
    )
    parts = TrainComponents(
        train_data=train_data,
        val_data=val_data,
        names=list(train_data.names),
        pipeline=pipeline,
        iters_per_epoch=iters_per_epoch,
        model=model,
        criterion=criterion,
        ema=ModelEMA(model, cfg.ema_decay, cfg.ema_ramp) if cfg.ema else None,
        optimizer=build_optimizer(
            model, cfg.lr, cfg.momentum, cfg.weight_decay, trunk_lr_scale=cfg.trunk_lr_scale, name=cfg.optimizer),
        schedule=schedule,
        scaler=torch.amp.GradScaler("cuda", enabled=plan.use_amp),
        train_model=model,
        no_aug_start_epoch=plan.no_aug_start_epoch,
    )
    if cfg.amp and not plan.use_amp:
        log("warning: --amp needs a CUDA device; training in float32")
    if restore is not None:
        restore(parts)
        cfg.lr = schedule.base_lr  # as saved: the domain-shift rule (engine/domain_shift.py) may have raised it
    parts.train_model = dist_utils.wrap_ddp(model, plan.dist)
    return parts
