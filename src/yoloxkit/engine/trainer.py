"""The YOLOX training loop: the official recipe on one process or under torchrun (DDP)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..io import atomic_write_text
from ..models import build_model
from ..trainable import attach_loss
from . import distributed as dist_utils
from .checkpoint import capture_rng_state, read_training_state, restore_rng_state, save_training_checkpoint
from .config import ConfigError, TrainConfig
from .data import TrainPipeline, batch_to_tensors, build_train_pipeline, epoch_seed, load_splits, seed_everything
from .ema import ModelEMA, unwrap_model
from .finetune import came_from_onnx, load_for_finetune, rescale_folded_convs
from .multiscale import resize_batch, size_for_iteration
from .optim import build_optimizer, set_lr
from .schedule import WarmupCosineSchedule

__all__ = ["Trainer", "TrainResult", "train"]

LOSS_KEYS = ("total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss", "num_fg")


@dataclass
class TrainResult:
    """What a finished (or interrupted) run produced."""

    out_dir: Path
    last: Path | None
    best: Path | None
    best_metric: float | None
    epochs_done: int
    iterations: int
    history: list[dict] = field(default_factory=list)
    interrupted: bool = False


class Trainer:
    """Runs :class:`TrainConfig` end to end. ``log`` receives one-line messages (rank 0 only)."""

    def __init__(
        self,
        cfg: TrainConfig,
        log: Callable[[str], None] | None = None,
        on_iteration_end: Callable[["Trainer"], None] | None = None,
    ) -> None:
        self.cfg = cfg.resolved()
        self.on_iteration_end = on_iteration_end
        self._log = log or print
        self.dist = dist_utils.init_distributed(self.cfg.device)
        self.device = self.dist.device
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda was requested but no CUDA device is available")
        self.out_dir = Path(self.cfg.out)
        self.history: list[dict] = []
        self.best_metric: float | None = None
        self.epoch = 0
        self.iter_in_epoch = 0
        self.global_iter = 0
        self.writer = None
        self._resume_rng = None
        self.current_lr = 0.0

    # ------------------------------------------------------------------ helpers
    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0

    def log(self, message: str) -> None:
        if self.is_main:
            self._log(message)

    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.cfg
        if cfg.weights and not cfg.resume and not Path(cfg.weights).is_file():
            from ..errors import WeightsError

            raise WeightsError(f"weights file not found: {cfg.weights}")
        seed_everything(epoch_seed(cfg.seed, -1, 0))  # identical initial weights on every rank
        need_val = cfg.eval_interval > 0
        self.train_data, self.val_data = load_splits(cfg, need_val=need_val)
        self.names = list(self.train_data.names)
        self.log(
            f"data: {len(self.train_data.records)} training images ({self.train_data.format}, split"
            f" {self.train_data.split})" + (f", {len(self.val_data.records)} validation images (split {self.val_data.split})" if self.val_data else "")
            + f", {len(self.names)} classes"
        )
        data_issues = [i for i in getattr(self.train_data, "issues", []) or [] if getattr(i, "severity", "") == "warning"]
        if data_issues:
            self.log(f"warning: {len(data_issues)} problems in the training data will be repaired (boxes clipped or dropped); e.g. {data_issues[0]}")
        self.pipeline: TrainPipeline = build_train_pipeline(cfg, self.train_data, self.dist.rank, self.dist.world_size)
        for warning in self.pipeline.warnings:
            self.log(f"warning: {warning}")
        if len(self.pipeline) == 0:
            raise ConfigError(f"the training split has {len(self.train_data.records)} images, fewer than one batch of {self.pipeline.batch_size}")
        self.iters_per_epoch = len(self.pipeline)
        if cfg.max_iters_per_epoch:
            self.iters_per_epoch = min(self.iters_per_epoch, cfg.max_iters_per_epoch)

        model = build_model(cfg.model, num_classes=len(self.names))
        self.criterion = attach_loss(model)
        if cfg.weights and not cfg.resume:
            report = load_for_finetune(model, cfg.weights, self.names, cfg.model)
            self.log(f"fine-tuning: {report.message()}")
            rescale = cfg.rescale_convs if cfg.rescale_convs is not None else came_from_onnx(cfg.weights)
            if rescale:
                changed = rescale_folded_convs(model)
                self.log(
                    f"fine-tuning: rescaled {changed} BN-folded conv kernels to ordinary norms (same function;"
                    " keeps SGD at the official lr from wrecking them; --no-rescale-convs turns this off)"
                )
        if cfg.sync_bn and self.dist.distributed:
            if self.device.type == "cuda":
                model = dist_utils.convert_sync_bn(model)
                self.log("SyncBatchNorm on")
            else:
                self.log("warning: --sync-bn needs CUDA devices; BatchNorm statistics are averaged at each epoch end instead")
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.ema = ModelEMA(model, cfg.ema_decay) if cfg.ema else None
        self.optimizer = build_optimizer(model, cfg.lr, cfg.momentum, cfg.weight_decay)
        self.schedule = WarmupCosineSchedule(
            base_lr=cfg.lr,
            iters_per_epoch=self.iters_per_epoch,
            epochs=cfg.epochs,
            warmup_epochs=cfg.warmup_epochs,
            no_aug_epochs=cfg.no_aug_epochs,
            min_lr_ratio=cfg.min_lr_ratio,
            warmup_lr=cfg.warmup_lr,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and self.device.type == "cuda")
        if cfg.amp and self.device.type != "cuda":
            self.log("warning: --amp needs a CUDA device; training in float32")
        if cfg.resume:
            self._restore(self.out_dir / "last.pth")
        self.train_model = dist_utils.wrap_ddp(model, self.dist)
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(json.dumps(cfg.to_dict(), indent=2, default=str) + "\n", self.out_dir / "config.json")
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))

    # ------------------------------------------------------------------ state
    def _train_state(self) -> dict[str, Any]:
        return {
            "model": unwrap_model(self.model).state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch,
            "iter_in_epoch": self.iter_in_epoch,
            "global_iter": self.global_iter,
            "best_metric": self.best_metric,
            "metric_name": self.metric_name,
            "history": self.history,
            "rng": capture_rng_state(),
            "config": self.cfg.to_dict(),
        }

    def _inference_weights(self) -> dict[str, torch.Tensor]:
        return (self.ema.module if self.ema else unwrap_model(self.model)).state_dict()

    def save(self, name: str = "last.pth", with_state: bool = True) -> Path | None:
        if not self.is_main:
            return None
        return save_training_checkpoint(
            self.out_dir / name,
            weights=self._inference_weights(),
            names=self.names,
            model_name=self.cfg.model,
            train_state=self._train_state() if with_state else None,
            epoch=self.epoch,
            metric=self.best_metric,
        )

    def _restore(self, path: Path) -> None:
        if not path.is_file():
            raise ConfigError(f"--resume: no checkpoint to resume from at {path}")
        ckpt = read_training_state(path)
        state = ckpt["train_state"]
        if list(ckpt.get("names") or []) != self.names:
            raise ConfigError(f"--resume: {path} was trained on other classes than --data")
        unwrap_model(self.model).load_state_dict(state["model"])
        if self.ema and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule = WarmupCosineSchedule.from_state_dict(state["schedule"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.iter_in_epoch = int(state["iter_in_epoch"])
        self.global_iter = int(state["global_iter"])
        self.best_metric = state.get("best_metric")
        self.metric_name = str(state.get("metric_name") or self.metric_name)
        self.history = list(state.get("history") or [])
        self._resume_rng = state.get("rng")
        self.log(f"resumed from {path}: epoch {self.epoch + 1}, iteration {self.iter_in_epoch} of the epoch")

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        self.setup()
        interrupted = False
        try:
            while self.epoch < self.cfg.epochs:
                self.train_one_epoch()
                self.after_epoch()
        except KeyboardInterrupt:
            interrupted = True
            path = self.save("last.pth")
            self.log(f"interrupted: saved {path} (continue with --resume)")
        finally:
            if self.writer:
                self.writer.flush()
        if not interrupted:
            self.finish()
        if self.writer:
            self.writer.close()
        last = self.out_dir / "last.pth"
        best = self.out_dir / "best.pth"
        result = TrainResult(
            self.out_dir,
            last if last.exists() else None,
            best if best.exists() else None,
            self.best_metric,
            self.epoch,
            self.global_iter,
            self.history,
            interrupted,
        )
        if interrupted:
            raise KeyboardInterrupt
        return result

    def in_no_aug_phase(self, epoch: int) -> bool:
        return self.cfg.no_aug or epoch >= self.cfg.epochs - self.cfg.no_aug_epochs

    def train_one_epoch(self) -> None:
        cfg = self.cfg
        epoch = self.epoch
        seed_everything(epoch_seed(cfg.seed, epoch, self.dist.rank))
        self.pipeline.set_epoch(epoch)
        if epoch >= cfg.epochs - cfg.no_aug_epochs:
            if not getattr(self, "_mosaic_closed", False):
                self.pipeline.close_mosaic()
                self._mosaic_closed = True
                self.criterion.use_l1 = True
                self.log(f"epoch {epoch + 1}: last {cfg.epochs - epoch} epochs, Mosaic/MixUp off, L1 loss on")
        self._set_train_mode()
        skip = self.iter_in_epoch
        sums: dict[str, float] = {}
        count = 0
        start = time.time()
        bar = None
        if self.is_main and cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.iters_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}", dynamic_ncols=True, leave=True)
        iterator = iter(self.pipeline.loader)
        for index in range(self.iters_per_epoch):
            batch = next(iterator)
            if index < skip:
                continue  # replaying the interrupted epoch up to where it stopped
            if index == skip and skip and getattr(self, "_resume_rng", None):
                restore_rng_state(self._resume_rng)
                self._resume_rng = None
            if self.cfg.visualize_assign and self.is_main and self.global_iter == 0:
                self._visual_batch = batch_to_tensors(batch)
                self.write_assignments("start")
                self._set_train_mode()
            losses, size = self.train_one_iter(batch)
            self.iter_in_epoch = index + 1
            if self.on_iteration_end is not None:
                self.on_iteration_end(self)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            if bar is not None:
                bar.set_postfix_str(
                    " ".join(f"{k.replace('_loss', '')}={v:.3f}" for k, v in losses.items() if k != "num_fg")
                    + f" lr={self.current_lr:.2e} size={size}",
                    refresh=False,
                )
                bar.update(1)
        if bar is not None:
            bar.close()
        del iterator
        row: dict[str, Any] = {"epoch": epoch + 1, "time_s": round(time.time() - start, 2)}
        row.update({k: v / max(count, 1) for k, v in sums.items()})
        self._epoch_row = row

    def _set_train_mode(self) -> None:
        self.model.train()

    def train_one_iter(self, batch) -> tuple[dict[str, float], int]:
        cfg = self.cfg
        images, targets = batch_to_tensors(batch)
        images = images.to(self.device, non_blocking=True).float()
        targets = targets.to(self.device, non_blocking=True).float()
        size = size_for_iteration(self.global_iter, cfg.size, cfg.size_range, cfg.seed, cfg.multiscale and not cfg.no_aug)
        images, targets = resize_batch(images, targets, size)
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        lr = self.schedule.lr(self.global_iter)
        set_lr(self.optimizer, lr)
        self.current_lr = lr
        with self._autocast():
            outputs = self.train_model(images, targets)
        loss = outputs["total_loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at iteration {self.global_iter}; lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema:
            self.ema.update(self.model)
        self.global_iter += 1
        values = {k: float(outputs[k].detach().float().item() if torch.is_tensor(outputs[k]) else outputs[k]) for k in LOSS_KEYS if k in outputs}
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"train/{key}", value, self.global_iter)
            self.writer.add_scalar("train/lr", lr, self.global_iter)
            self.writer.add_scalar("train/size", size, self.global_iter)
        return values, size

    def after_epoch(self) -> None:
        cfg = self.cfg
        row = self._epoch_row
        dist_utils.sync_norm_buffers(unwrap_model(self.model))
        if self.ema:
            dist_utils.sync_norm_buffers(self.ema.module)
        self.epoch += 1
        self.iter_in_epoch = 0
        evaluate_now = self.val_data is not None and cfg.eval_interval > 0 and (
            self.epoch % cfg.eval_interval == 0 or self.epoch == cfg.epochs or self.in_no_aug_phase(self.epoch - 1) and not cfg.no_aug
        )
        improved = False
        if evaluate_now:
            metric, metrics = self.evaluate()
            if metric is not None:
                row["ap"] = metric
                row.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
                if self.best_metric is None or metric > self.best_metric:
                    self.best_metric, improved = metric, True
                if self.writer is not None:
                    self.writer.add_scalar("val/AP", metric, self.epoch)
                self.log(f"epoch {self.epoch}: {self.metric_name} {metric:.2f} (best {self.best_metric:.2f})")
        self.history.append(row)
        if self.is_main:
            losses = " ".join(f"{k}={row[k]:.4f}" for k in LOSS_KEYS if k in row and k != "num_fg")
            self.log(f"epoch {self.epoch}/{cfg.epochs}: {losses}")
            self.save("last.pth")
            if improved:
                self.save("best.pth", with_state=False)
            atomic_write_text(json.dumps(self.history, indent=1) + "\n", self.out_dir / "history.json")
        dist_utils.barrier()

    metric_name = "AP"

    def evaluate(self) -> tuple[float | None, dict]:
        """Evaluate the EMA weights on the validation split (rank 0; other ranks wait)."""
        result: tuple[float | None, dict] = (None, {})
        if self.is_main:
            from .evaluation import evaluate_model

            model = self.ema.module if self.ema else unwrap_model(self.model)
            primary, name, metrics = evaluate_model(
                model, self.names, self.val_data, self.cfg.size, self.cfg.eval_conf, self.cfg.eval_nms, self.device
            )
            self.metric_name = name
            unwrap_model(self.model).train()
            result = (primary, metrics)
        return dist_utils.broadcast_object(result)

    def write_assignments(self, stage: str, count: int = 4) -> None:
        """PNGs of the SimOTA positives on the first training batch (``OUT/assign``), drawn with
        the current weights at the ``start`` and the ``end`` of training."""
        batch = getattr(self, "_visual_batch", None)
        if batch is None:
            return
        from ..assign.visualize import write_assignment_images

        images, targets = batch
        model = unwrap_model(self.model)
        images = images[:count].to(self.device).float()
        targets = targets[:count].to(self.device).float()
        paths = write_assignment_images(model, images, targets, self.out_dir / "assign", prefix=f"{stage}")
        self.log(f"SimOTA positives ({stage}): {len(paths)} images in {self.out_dir / 'assign'}")

    def finish(self) -> None:
        if not self.is_main:
            return
        if self.cfg.plots:
            from .plots import plot_losses, plot_metric

            written = [plot_losses(self.history, self.out_dir / "loss_curves.png"), plot_metric(self.history, self.out_dir / "ap_per_epoch.png", label=self.metric_name)]
            for path in written:
                if path is not None:
                    self.log(f"plot: {path}")
        if self.cfg.visualize_assign:
            self.write_assignments("end")
        self.log(f"done: last checkpoint {self.out_dir / 'last.pth'}" + (f", best {self.out_dir / 'best.pth'} ({self.metric_name} {self.best_metric:.2f})" if self.best_metric is not None else ""))


def train(cfg: TrainConfig, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train with ``cfg``; on exit the process group (if any) is torn down."""
    trainer = Trainer(cfg, log)
    try:
        return trainer.fit()
    finally:
        dist_utils.cleanup()
