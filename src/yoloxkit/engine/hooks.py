"""What happens around the training iterations: small objects the loop calls at fixed points.

After each epoch: :class:`EvaluationHook` (validation AP and the best so far),
:class:`RecordHook` (history row and log line), :class:`CheckpointHook` (``last.pth``,
``best.pth``, ``history.json``). At the end of the run: :class:`PlotHook`. Around both:
:class:`AssignmentImagesHook` (``--visualize-assign``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from . import distributed as dist_utils
from .assign_images import write_assignment_images
from .builder import TrainComponents
from .config import TrainConfig
from .data import batch_to_tensors
from .evaluation import evaluate_split, metric_name
from .logger import TrainLogger, format_losses
from .plots import plot_losses, plot_metric
from .state import TrainState

__all__ = [
    "Run",
    "EpochEnd",
    "Hook",
    "EvaluationHook",
    "RecordHook",
    "CheckpointHook",
    "PlotHook",
    "AssignmentImagesHook",
    "default_hooks",
]


class Run(Protocol):
    """What hooks see of the trainer."""

    cfg: TrainConfig
    state: TrainState
    logger: TrainLogger
    out_dir: Path
    device: torch.device

    @property
    def parts(self) -> TrainComponents: ...

    @property
    def is_main(self) -> bool: ...

    def save(self, name: str = "last.pth", with_state: bool = True) -> Path | None: ...


@dataclass
class EpochEnd:
    """A finished epoch, as the after-epoch hooks pass it on."""

    epoch: int  # 1-based number of the finished epoch
    row: dict[str, Any]  # its history row: epoch, time_s, mean losses (+ validation metrics)
    improved: bool = False  # the validation metric reached a new best


class Hook:
    """Base class: every method does nothing unless overridden."""

    def before_train(self, run: Run) -> None:
        """Before the first epoch of a fresh run (not after a resume), on every rank."""

    def before_first_iter(self, run: Run, batch: Any) -> None:
        """Before the first iteration of a fresh run, with its batch."""

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        """After every epoch, on every rank, in hook order."""

    def after_train(self, run: Run) -> None:
        """At the end of a run that was not interrupted (rank 0)."""


class EvaluationHook(Hook):
    """Evaluates the EMA weights every ``eval_interval`` epochs, after the last one and after
    every no-aug epoch; keeps the best metric. With ``eval_start`` (fine-tuning) it also
    evaluates the starting weights as epoch 0 and writes them as the first ``best.pth``, so that
    ``best.pth`` is never worse than the weights the run started from."""

    def before_train(self, run: Run) -> None:
        if not run.cfg.eval_start or run.parts.val_data is None or run.cfg.eval_interval == 0:
            return
        metric, _, report = self.evaluate(run)
        if metric is None:
            return
        state = run.state
        state.start_metric = state.best_metric = metric
        state.best_epoch, state.best_eval = 0, report
        run.logger.scalars({"val/AP": metric}, 0)
        run.logger.log(f"epoch 0 (starting weights): {state.metric_name} {metric:.2f}")
        if run.is_main:
            run.save("best.pth", with_state=False)

    def after_train(self, run: Run) -> None:
        state = run.state
        if state.start_metric is not None and state.best_epoch == 0 and (run.out_dir / "best.pth").is_file():
            run.logger.log(
                f"warning: no epoch beat the starting weights ({state.metric_name} {state.start_metric:.2f});"
                " best.pth holds them. Try more epochs, a lower --lr or more training images"
            )

    @staticmethod
    def due(cfg: TrainConfig, epoch: int, has_val: bool) -> bool:
        """Whether to evaluate after 1-based epoch ``epoch``."""
        if not has_val or cfg.eval_interval <= 0:
            return False
        finished_no_aug = epoch - 1 >= cfg.no_aug_start_epoch and not cfg.no_aug
        return epoch % cfg.eval_interval == 0 or epoch == cfg.epochs or finished_no_aug

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        state = run.state
        if not self.due(run.cfg, end.epoch, run.parts.val_data is not None):
            return
        metric, metrics, report = self.evaluate(run)
        if metric is None:
            return
        end.row["ap"] = metric
        end.row.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        if state.best_metric is None or metric > state.best_metric:
            state.best_metric, state.best_epoch, end.improved = metric, end.epoch, True
            state.best_eval = report
        run.logger.scalars({"val/AP": metric}, end.epoch)
        run.logger.log(f"epoch {end.epoch}: {state.metric_name} {metric:.2f} (best {state.best_metric:.2f})")

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
    """Appends the epoch's row to the history, logs its mean losses and counts the unreadable
    training images (the dataset names each once, as it meets it)."""

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        run.state.note_skipped("train", run.parts.pipeline.dataset.unreadable_paths())
        run.state.history.append(end.row)
        run.logger.log(f"epoch {end.epoch}/{run.cfg.epochs}: {format_losses(end.row)}")


class CheckpointHook(Hook):
    """Writes ``best.pth`` (when the metric improved), then ``last.pth`` (resumable, the epoch
    no longer pending) and ``history.json`` (rank 0). In that order, a ``last.pth`` names a
    best epoch only once its ``best.pth`` is on disk."""

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        run.state.pending_row = None
        if not run.is_main:
            return
        if end.improved:
            run.save("best.pth", with_state=False)
        run.save("last.pth")
        run.logger.write_json(run.state.history, run.out_dir / "history.json")


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

    def before_first_iter(self, run: Run, batch: Any) -> None:
        if not run.is_main:
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


def default_hooks(cfg: TrainConfig) -> list[Hook]:
    """The hooks of a run of ``cfg``, in the order they run."""
    hooks: list[Hook] = [EvaluationHook(), RecordHook(), CheckpointHook()]
    if cfg.plots:
        hooks.append(PlotHook())
    if cfg.visualize_assign:
        hooks.append(AssignmentImagesHook())
    return hooks
