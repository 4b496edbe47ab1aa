"""The YOLOX training loop: the official recipe on one process or under torchrun (DDP).

:class:`Trainer` runs the epochs and iterations; the parts of the run come from
:func:`~yoloxkit.engine.builder.build_components`, its progress is a
:class:`~yoloxkit.engine.state.TrainState` (saved and restored with the parts) and everything
around the iterations (evaluation, checkpoints, plots, pictures) is a hook of
:mod:`yoloxkit.engine.hooks`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from ..deprecation import warn_deprecated
from ..io import atomic_write_text
from . import distributed as dist_utils
from .builder import TrainComponents, build_components
from .checkpoint import restore_rng_state
from .config import TrainConfig
from .data import TrainPipeline, batch_to_tensors, epoch_seed, seed_everything
from .hook_set import run_hooks
from .hooks import CheckpointHook, Evaluator, Hook, StepCallback
from .interrupts import DeferredInterrupt
from .logger import LOSS_KEYS, TrainLogger
from .multiscale import describe_input, resize_batch, size_for_iteration
from .optim import set_lr
from .plan import RunPlan, plan_run
from .run_dir import clear_failed_start, remove_stale_temporaries
from .run_lock import lock_run_folder
from .run_length import report_resume, resume_length
from .state import TrainState
from .stopping import stop_summary
from .summary import results_table

__all__ = ["Trainer", "TrainResult", "train"]


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
    """Runs one training run end to end: a :class:`~yoloxkit.engine.plan.RunPlan`, or a
    :class:`TrainConfig` that it plans once. ``log`` receives one-line messages (rank 0 only);
    ``hooks`` run after the built-in ones (:mod:`yoloxkit.engine.hooks`).
    ``on_iteration_end(trainer)`` (deprecated: a hook's ``after_step``) runs after every step."""

    def __init__(
        self,
        cfg: TrainConfig | RunPlan,
        log: Callable[[str], None] | None = None,
        on_iteration_end: Callable[["Trainer"], None] | None = None,
        hooks: Iterable[Hook] = (),
    ) -> None:
        self.plan = plan_run(cfg)
        self.cfg = self.plan.cfg
        self.dist = self.plan.dist
        self.device = self.dist.device
        self.restarted = self.plan.restarted
        self.out_dir = self.plan.out_dir
        self.logger = TrainLogger(log or print, self.dist.rank == 0)
        self.state = TrainState()
        self.evaluator = Evaluator()
        self.hooks: list[Hook] = run_hooks(self.plan, hooks)
        if on_iteration_end is not None:
            warn_deprecated("Trainer(on_iteration_end)", "Trainer(on_iteration_end=...) is deprecated;"
                            " pass hooks=[a Hook with after_step]")
            self.hooks.append(StepCallback(on_iteration_end))
        self.current_lr = 0.0
        self._parts: TrainComponents | None = None
        self._resume_rng: dict[str, Any] | None = None
        self.interrupt = DeferredInterrupt()

    @property
    def checkpoints(self) -> CheckpointHook:
        """The hook that writes every checkpoint of the run."""
        return next(h for h in self.hooks if isinstance(h, CheckpointHook))

    # ------------------------------------------------------------------ views
    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0

    @property
    def parts(self) -> TrainComponents:
        """The run's components (after :meth:`setup`)."""
        if self._parts is None:
            raise RuntimeError("Trainer.setup() has not run yet")
        return self._parts

    @property
    def model(self) -> torch.nn.Module:
        return self.parts.model

    @property
    def pipeline(self) -> TrainPipeline:
        return self.parts.pipeline

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def global_iter(self) -> int:
        return self.state.global_iter

    def log(self, message: str) -> None:
        self.logger.log(message)

    def _autocast(self):
        if self.plan.use_amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ setup and state
    def setup(self) -> None:
        """Build the components (restoring ``OUT/last.pth`` with ``--resume``), tidy the output
        folder (temporary files of a killed run; an earlier run's files with ``--exist-ok``, or
        what a run that failed before its first epoch left), write ``config.json`` and open
        TensorBoard."""
        for line in self.plan.notes:
            self.log(line)
        if self.is_main:
            stale = remove_stale_temporaries(self.out_dir)
            if stale:
                self.log(f"removed {len(stale)} temporary files left by an interrupted write: {', '.join(stale)}")
        self._parts = build_components(self.plan, self.log, restore=self._restore if self.cfg.resume else None)
        if self.is_main:
            if not self.cfg.resume:
                clear_failed_start(self.out_dir, self.cfg.exist_ok and not self.restarted, self.log)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.log(f"{describe_input(self.cfg, self.plan.multiscale)}; output folder: {self.out_dir}")
            self.logger.write_config(self.cfg.to_dict(), self.out_dir)
            if self.cfg.tensorboard:
                self.logger.open_tensorboard(self.out_dir / "tensorboard")

    def _restore(self, parts: TrainComponents) -> None:
        path = self.out_dir / "last.pth"
        self._resume_rng = self.state.restore(path, parts.stateful(), parts.names, self.cfg.model)
        resume_length(self.cfg, parts, self.state, self.plan.epoch_fractions, self.out_dir, self.log)
        report_resume(self.state, self.cfg, path, self.log)

    def save(self, name: str = "last.pth", with_state: bool = True) -> Path | None:
        """Write ``OUT/name`` (rank 0) through the checkpoint hook, the one writer."""
        return self.checkpoints.write(self, name, with_state)

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        """Run (or continue, with ``--resume``) the whole training, holding the run folder's lock
        (rank 0) from before its first write to the end; Ctrl-C stops at the next iteration
        boundary, saves ``last.pth`` and raises :class:`KeyboardInterrupt`."""
        with lock_run_folder(self.out_dir) if self.is_main else contextlib.nullcontext():
            return self._fit()

    def _fit(self) -> TrainResult:
        self.setup()
        interrupted = False
        try:
            with self.interrupt:
                if self.state.epoch == 0 and self.state.iter_in_epoch == 0 and not self.cfg.resume:
                    self.evaluator.start(self)
                    for hook in self.hooks:
                        hook.before_train(self)
                if self.state.pending_row is not None:  # killed after training an epoch, before its records
                    self.finish_epoch()
                while self.state.epoch < self.cfg.epochs and self.state.stop_reason is None:
                    row = self.train_one_epoch()
                    self.after_epoch(row)
                    self.interrupt.check()
        except KeyboardInterrupt:
            interrupted = True
            # stopped inside an epoch (at an iteration boundary): its iterations are not in last.pth yet
            if self.state.iter_in_epoch and not self.interrupt.forced:
                path = self.save("last.pth")
                self.log(f"interrupted: saved {path} (continue with --resume)")
            elif self.interrupt.forced:
                self.log(f"stopped at once: {self.out_dir / 'last.pth'} holds the run up to its last save")
            else:
                self.log(f"interrupted: {self.out_dir / 'last.pth'} holds the run so far (continue with --resume)")
        finally:
            self.logger.flush()
        if not interrupted:
            self.finish()
        self.logger.close()
        last, best = self.out_dir / "last.pth", self.out_dir / "best.pth"
        state = self.state
        result = TrainResult(
            self.out_dir,
            last if last.exists() else None,
            best if best.exists() else None,
            state.best_metric,
            state.epoch,
            state.global_iter,
            state.history,
            interrupted,
        )
        if interrupted:
            raise KeyboardInterrupt
        return result

    def train_one_epoch(self) -> dict[str, Any]:
        """Run the iterations of epoch ``state.epoch`` (from ``state.iter_in_epoch`` on, after a
        resume) and return its history row: ``epoch`` (1-based), ``time_s`` and the mean losses."""
        cfg, parts, state, epoch = self.cfg, self.parts, self.state, self.state.epoch
        seed_everything(epoch_seed(cfg.seed, epoch, self.dist.rank))
        l1_was_on = parts.criterion.use_l1  # from the start (domain shift), as restored on a resume
        if parts.enter_epoch(epoch):  # Mosaic/MixUp off and L1 on, together, at the one boundary
            self.log(f"epoch {epoch + 1}: last {cfg.epochs - epoch} epochs, Mosaic/MixUp off" + ("" if l1_was_on else ", L1 loss on"))
        parts.train_mode()
        skip = state.iter_in_epoch
        clock = time.time()
        bar = self.logger.epoch_bar(parts.iters_per_epoch, skip, f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress)
        iterator = iter(parts.pipeline.loader)
        for index in range(parts.iters_per_epoch):
            batch = next(iterator)
            if index < skip:
                continue  # replaying the interrupted epoch up to where it stopped
            if index == skip and skip and self._resume_rng:
                restore_rng_state(self._resume_rng)
                self._resume_rng = None
            for hook in self.hooks:
                hook.before_step(self, batch)
            losses, size = self.train_one_iter(batch)
            state.iter_in_epoch = index + 1
            state.add_losses(losses)
            now = time.time()
            state.epoch_time, clock = state.epoch_time + now - clock, now
            bar.update(losses, self.current_lr, size)
            self._after_step(losses)
            if self.interrupt.requested and index + 1 < parts.iters_per_epoch:
                bar.close()
                raise KeyboardInterrupt
        bar.close()
        del iterator
        row: dict[str, Any] = {"epoch": epoch + 1, "time_s": round(state.epoch_time, 2)}
        row.update(state.epoch_means())
        return row

    def train_one_iter(self, batch: Any) -> tuple[dict[str, float], int]:
        """One SGD step on ``batch``; returns its loss terms and the input size it ran at."""
        cfg, parts, state = self.cfg, self.parts, self.state
        images, targets = batch_to_tensors(batch)
        images = images.to(self.device, non_blocking=True).float()
        targets = targets.to(self.device, non_blocking=True).float()
        size = size_for_iteration(state.global_iter, cfg.size, cfg.size_range, cfg.seed, self.plan.multiscale)
        images, targets = resize_batch(images, targets, size)
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        lr = parts.schedule.lr(state.global_iter)
        set_lr(parts.optimizer, lr)
        self.current_lr = lr
        with self._autocast():
            outputs = parts.train_model(images, targets)
        loss = outputs["total_loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at iteration {state.global_iter}; lower --lr")
        parts.optimizer.zero_grad(set_to_none=True)
        parts.scaler.scale(loss).backward()
        parts.scaler.step(parts.optimizer)
        parts.scaler.update()
        if parts.ema:
            parts.ema.update(parts.model)
        state.global_iter += 1
        values = {k: float(outputs[k].detach().float().item() if torch.is_tensor(outputs[k]) else outputs[k]) for k in LOSS_KEYS if k in outputs}
        scalars = {f"train/{key}": value for key, value in values.items()}
        self.logger.scalars({**scalars, "train/lr": lr, "train/size": size}, state.global_iter)
        return values, size

    def _after_step(self, losses: Mapping[str, float]) -> None:
        """The hooks' ``after_step``; a :class:`KeyboardInterrupt` from one stops the run as Ctrl-C does."""
        try:
            for hook in self.hooks:
                hook.after_step(self, losses)
        except KeyboardInterrupt:
            self.interrupt.request()

    def after_epoch(self, row: dict[str, Any]) -> None:
        """Average BatchNorm statistics over the ranks, count the epoch, write its ``last.pth``
        with the epoch pending (so that a crash in the evaluation costs nothing) and finish it."""
        parts, state = self.parts, self.state
        dist_utils.sync_norm_buffers(parts.model)
        if parts.ema:
            dist_utils.sync_norm_buffers(parts.ema.module)
        state.epoch += 1
        state.iter_in_epoch = 0
        state.pending_row = row
        state.start_epoch()
        self.checkpoints.write(self, "last.pth")
        self.finish_epoch()

    def finish_epoch(self) -> None:
        """The after-epoch work of the pending epoch ``state.pending_row`` (also what a resume
        from a ``last.pth`` written before it runs first): evaluate, close the row into the
        history, then the hooks' ``after_epoch`` (``best.pth``, ``history.json``, log lines)."""
        state = self.state
        end = self.evaluator.after_epoch(self, state.epoch, dict(state.pending_row))
        state.note_skipped("train", self.parts.pipeline.dataset.unreadable_paths())
        state.close_epoch(end.row)
        for hook in self.hooks:
            hook.after_epoch(self, end)
        dist_utils.barrier()

    def finish(self) -> None:
        """The end-of-run hooks and the closing log line (rank 0)."""
        if not self.is_main:
            return
        for hook in self.hooks:
            hook.after_train(self)
        state, out = self.state, self.out_dir
        best_file = out / "best.pth"
        best = ""
        if state.best_metric is not None and best_file.is_file():
            best = f", best {best_file} ({state.metric_name} {state.best_metric:.2f})"
        table = results_table(self.cfg, state, out)
        atomic_write_text(table + "\n", out / "results.txt")
        self.log(table)
        self.log(f"done: last checkpoint {out / 'last.pth'}{best}")
        stopped = stop_summary(state)
        if stopped:
            self.log(stopped)


def train(
    cfg: TrainConfig | RunPlan, log: Callable[[str], None] | None = None, hooks: Iterable[Hook] = ()
) -> TrainResult:
    """Train with ``cfg`` (a config, planned once here, or a :class:`~yoloxkit.engine.plan.RunPlan`);
    ``hooks`` run after the built-in ones. On exit the process group (if any) is torn down."""
    trainer = Trainer(cfg, log, hooks=hooks)
    try:
        return trainer.fit()
    finally:
        dist_utils.cleanup()
