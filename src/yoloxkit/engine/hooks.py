"""What happens around the training iterations: small objects the loop calls at fixed points.

A hook subclasses :class:`Hook` and overrides any of ``before_train``, ``before_step``,
``after_step``, ``after_epoch`` and ``after_train`` (docs/training_hooks.md); ``train(cfg,
hooks=[...])`` runs user hooks after the built-in ones. Hooks do not depend on their order:
the trainer evaluates (:class:`Evaluator`, the one place that asks :meth:`TrainState.update_best`
whether an epoch is the best) and closes the epoch's row before any ``after_epoch`` runs, so
each hook reads a finished :class:`EpochEnd`. The built-in hooks: :class:`RecordHook` (log
lines), :class:`CheckpointHook` (every checkpoint write: ``last.pth``, ``best.pth``,
``history.json``), :class:`PlotHook` and :class:`AssignmentImagesHook` (``--visualize-assign``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch

from . import distributed as dist_utils
from .assign_images import write_assignment_images
from .builder import TrainComponents
from .config import TrainConfig
from .data import batch_to_tensors
from .domain_shift import adapt_to_domain_shift
from .evaluation import evaluate_split, metric_name
from .logger import TrainLogger, format_losses
from .plan import RunPlan
from .plots import plot_losses, plot_metric
from .state import TrainState

__all__ = [
    "Run",
    "EpochEnd",
    "Hook",
    "Evaluator",
    "RecordHook",
    "CheckpointHook",
    "PlotHook",
    "AssignmentImagesHook",
    "StepCallback",
    "default_hooks",
]


class Run(Protocol):
    """What hooks see of the trainer."""

    plan: RunPlan
    cfg: TrainConfig  # the plan's resolved options
    state: TrainState
    logger: TrainLogger
    out_dir: Path
    device: torch.device
    current_lr: float  # the lr of the last step (of the head's groups)

    @property
    def parts(self) -> TrainComponents: ...

    @property
    def is_main(self) -> bool: ...


@dataclass(frozen=True)
class EpochEnd:
    """A finished epoch, evaluated and recorded before any ``after_epoch`` hook runs."""

    epoch: int  # 1-based number of the finished epoch
    row: dict[str, Any]  # its history row: epoch, time_s, mean losses (+ ap and val_* when evaluated)
    metric: float | None = None  # its validation metric; None: not evaluated this epoch
    is_best: bool = False  # the metric is the best so far (decided by TrainState.update_best)
    report: dict | None = None  # the whole evaluation (EvalResult.to_json(): per-class AP ...); None: not evaluated

    @property
    def improved(self) -> bool:
        """Former name of :attr:`is_best`."""
        return self.is_best


class Hook:
    """Base class: every method does nothing unless overridden. ``run`` is the trainer."""

    def before_train(self, run: Run) -> None:
        """Before the first epoch of a fresh run (not after a resume), on every rank."""

    def before_step(self, run: Run, batch: Any) -> None:
        """Before each SGD step, with its batch (``run.state.global_iter`` steps done)."""

    def after_step(self, run: Run, losses: Mapping[str, float]) -> None:
        """After each SGD step, with its loss terms. Raising :class:`KeyboardInterrupt` here
        stops the run at this step boundary as Ctrl-C does (``last.pth`` saved)."""

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        """After every epoch (evaluated, its row in ``run.state.history``), on every rank."""

    def after_train(self, run: Run) -> None:
        """At the end of a run that was not interrupted (rank 0)."""


class Evaluator:
    """Evaluates the EMA weights every ``eval_interval`` epochs, after the last one and after
    every no-aug epoch, and asks the state whether the metric is the best. With ``eval_start``
    (fine-tuning) it also evaluates the starting weights as epoch 0, so that ``best.pth`` is
    never worse than the weights the run started from."""

    def start(self, run: Run) -> None:
        """Epoch 0: the starting weights, with ``eval_start``."""
        if not run.cfg.eval_start or run.parts.val_data is None or run.cfg.eval_interval == 0:
            return
        metric, metrics, report = self.evaluate(run)
        if metric is None:
            return
        state = run.state
        state.start_metric = metric
        state.update_best(0, metric, report)
        run.logger.scalars({"val/AP": metric}, 0)
        run.logger.log(f"epoch 0 (starting weights): {state.metric_name} {metric:.2f}")
        shift = adapt_to_domain_shift(run.cfg, metrics)
        if shift is not None:  # on every rank: the metrics are broadcast
            run.cfg.lr = run.parts.schedule.base_lr = shift.lr
            if shift.l1:
                run.cfg.l1_from_start = run.parts.criterion.use_l1 = True
            run.cfg.shifted_lr_scale = 1.0  # the lr holds the shift: a restart from config.json keeps, not raises, it
            run.logger.log(shift.line)
            run.logger.write_config(run.cfg.to_dict(), run.out_dir)  # with the raised lr

    @staticmethod
    def due(cfg: TrainConfig, epoch: int, has_val: bool) -> bool:
        """Whether to evaluate after 1-based epoch ``epoch``."""
        if not has_val or cfg.eval_interval <= 0:
            return False
        finished_no_aug = epoch - 1 >= cfg.no_aug_start_epoch and not cfg.no_aug
        return epoch % cfg.eval_interval == 0 or epoch == cfg.epochs or finished_no_aug

    def after_epoch(self, run: Run, epoch: int, row: dict[str, Any]) -> EpochEnd:
        """Evaluate after ``epoch`` when due, adding the metrics to ``row``."""
        state = run.state
        if not self.due(run.cfg, epoch, run.parts.val_data is not None):
            return EpochEnd(epoch, row)
        metric, metrics, report = self.evaluate(run)
        if metric is None:
            return EpochEnd(epoch, row)
        row["ap"] = metric
        row.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        is_best = state.update_best(epoch, metric, report)
        run.logger.scalars({"val/AP": metric}, epoch)
        run.logger.log(f"epoch {epoch}: {state.metric_name} {metric:.2f} (best {state.best_metric:.2f})")
        return EpochEnd(epoch, row, metric, is_best, report)

    @staticmethod
    def evaluate(run: Run) -> tuple[float | None, dict, dict | None]:
        """Evaluate the EMA weights on the validation split (rank 0; other ranks wait): the
        primary metric, all metrics and the whole report (``EvalResult.to_json()``).
        Unreadable validation images are skipped, and each is named once in the log."""
        result: tuple[float | None, dict, dict | None] = (None, {}, None)
        if run.is_main:
            parts, cfg = run.parts, run.cfg
            report = evaluate_split(
                parts.inference_model, parts.names, parts.val_data, cfg.size, cfg.eval_conf, cfg.eval_nms, run.device
            )
            run.state.metric_name = metric_name(report)
            for path in run.state.note_skipped("val", report.skipped_images):
                run.logger.log(f"warning: {path} cannot be read; it is left out of the evaluation")
            parts.train_mode()
            result = (float(report.primary), dict(report.metrics), report.to_json())
        return dist_utils.broadcast_object(result)


class RecordHook(Hook):
    """Logs each epoch's mean losses, and at the end whether any epoch beat the starting weights."""

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        run.logger.log(f"epoch {end.epoch}/{run.cfg.epochs}: {format_losses(end.row)}")

    def after_train(self, run: Run) -> None:
        state = run.state
        if state.start_metric is not None and state.best_epoch == 0 and (run.out_dir / "best.pth").is_file():
            run.logger.log(
                f"warning: no epoch beat the starting weights ({state.metric_name} {state.start_metric:.2f});"
                " best.pth holds them. Try more epochs, a lower --lr or more training images"
            )


class CheckpointHook(Hook):
    """Every checkpoint write of a run (rank 0), each file once per epoch. The trainer calls
    :meth:`write` for ``last.pth`` when an epoch is trained, before it is evaluated (the epoch
    pending: a crash or kill in the evaluation costs nothing, a resume runs the pending work
    first) and on Ctrl-C. After the evaluation this hook writes ``best.pth`` (when the epoch is
    the best) and ``history.json``; at the end of the run ``last.pth`` once more, with nothing
    pending. A ``last.pth`` never names a best epoch whose ``best.pth`` is not on disk: it is
    written before the evaluation that may make one."""

    def write(self, run: Run, name: str = "last.pth", with_state: bool = True) -> Path | None:
        """Write ``OUT/name`` (rank 0): the EMA weights, plus the resumable state if ``with_state``."""
        if not run.is_main:
            return None
        parts, cfg = run.parts, run.cfg
        return run.state.save(
            run.out_dir / name,
            weights=parts.inference_model.state_dict(),
            names=parts.names,
            model_name=cfg.model,
            parts=parts.stateful() if with_state else None,
            config=cfg.to_dict(),
            input_size=cfg.size,
        )

    def before_train(self, run: Run) -> None:
        if run.state.best_epoch == 0:  # the starting weights were evaluated (eval_start)
            self.write(run, "best.pth", with_state=False)

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        if not run.is_main:
            return
        if end.is_best:
            self.write(run, "best.pth", with_state=False)
        run.logger.write_json(run.state.history, run.out_dir / "history.json")

    def after_train(self, run: Run) -> None:
        self.write(run, "last.pth")


class PlotHook(Hook):
    """PNG plots of the losses and the validation metric per epoch."""

    def after_train(self, run: Run) -> None:
        history, out = run.state.history, run.out_dir
        written = [plot_losses(history, out / "loss_curves.png"),
                   plot_metric(history, out / "ap_per_epoch.png", label=run.state.metric_name)]
        for path in written:
            if path is not None:
                run.logger.log(f"plot: {path}")


class AssignmentImagesHook(Hook):
    """PNGs of the SimOTA positives on the first training batch (``OUT/assign``), drawn with
    the weights at the ``start`` and at the ``end`` of training."""

    def __init__(self, count: int = 4) -> None:
        self.count = count
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None

    def before_step(self, run: Run, batch: Any) -> None:
        if not run.is_main or run.state.global_iter != 0:
            return
        self.batch = batch_to_tensors(batch)
        self.write(run, "start")
        run.parts.train_mode()

    def after_train(self, run: Run) -> None:
        self.write(run, "end")

    def write(self, run: Run, stage: str) -> None:
        """Draw the kept batch with the current weights (nothing when no batch was kept)."""
        if self.batch is None:
            return
        images, targets = self.batch
        images = images[: self.count].to(run.device).float()
        targets = targets[: self.count].to(run.device).float()
        folder = run.out_dir / "assign"
        paths = write_assignment_images(run.parts.model, images, targets, folder, prefix=stage)
        run.logger.log(f"SimOTA positives ({stage}): {len(paths)} images in {folder}")


class StepCallback(Hook):
    """A function ``callback(run)`` called after every step (the deprecated ``on_iteration_end``)."""

    def __init__(self, callback: Callable[[Any], None]) -> None:
        self.callback = callback

    def after_step(self, run: Run, losses: Mapping[str, float]) -> None:
        self.callback(run)


def default_hooks(cfg: TrainConfig) -> list[Hook]:
    """The built-in hooks of a run of ``cfg`` (their order does not matter)."""
    hooks: list[Hook] = [RecordHook(), CheckpointHook()]
    if cfg.plots:
        hooks.append(PlotHook())
    if cfg.visualize_assign:
        hooks.append(AssignmentImagesHook())
    return hooks
