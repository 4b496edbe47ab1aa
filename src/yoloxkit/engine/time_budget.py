"""A time budget (``--time HOURS``): the run's number of epochs is fitted so that the whole
schedule (warm-up, cosine, the no-augmentation tail and their evaluations) ends within it.

The budget counts from the start of the run (building, the starting weights' evaluation
included; a resume adds the time spent before it). A first fit comes after a few steps of the
first epoch, from their speed; the run is refitted after every epoch of the Mosaic phase from
the mean measured costs (an epoch's steps, and the evaluation and checkpoint writes after it),
and the length is final once the no-aug tail begins. A refit lengthens the run whenever more
epochs fit, and shortens it only when the run is projected to end in the last 1% of the budget
(:func:`keep_or_change`), so that small changes of the measured costs do not move it back and forth. :func:`fit_epochs` keeps a share
:data:`SAFETY` of the budget unplanned, as epoch times vary with the multi-scale sizes drawn.
``--epochs`` caps the fit (by default the official 300); ``--patience`` may end the run sooner.
Each change of the length follows :mod:`.run_length` and is logged.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Callable

from . import distributed as dist_utils
from .hooks import EpochEnd, Evaluator, Hook, Run
from .run_length import describe_length, length_settings, set_run_epochs

__all__ = ["EpochCosts", "projected_s", "fit_epochs", "keep_or_change", "TimeBudget", "SAFETY", "clock"]

clock: Callable[[], float] = time.monotonic  # the budget's clock (tests put a fake one here)
SAFETY = 0.03
#: an evaluation's cost per validation image, as a share of a training step's per image (forward
#: only, one size, no augmentation): the first fit's guess, before an evaluation was timed
EVAL_COST_SHARE = 0.35


@dataclass(frozen=True)
class EpochCosts:
    """Seconds per epoch: its steps, and what follows them when it is evaluated or not."""

    train_s: float
    eval_s: float
    plain_s: float = 0.0


def projected_s(spent_s: float, done: int, costs: EpochCosts, evaluated: Callable[[int, int], bool], total: int) -> float:
    """Seconds at the end of a ``total``-epoch run that has spent ``spent_s`` on ``done`` epochs,
    where 1-based epoch ``e`` of it is evaluated when ``evaluated(e, total)``."""
    return spent_s + sum(costs.train_s + (costs.eval_s if evaluated(epoch, total) else costs.plain_s)
                         for epoch in range(done + 1, total + 1))


def fit_epochs(
    budget_s: float, spent_s: float, done: int, costs: EpochCosts, evaluated: Callable[[int, int], bool],
    lowest: int, highest: int,
) -> int:
    """The most epochs ``E`` in ``[lowest, highest]`` whose run ends (:func:`projected_s`) within
    ``(1 - SAFETY) * budget_s``; ``lowest`` when none does."""
    target = (1.0 - SAFETY) * budget_s
    fitting = [t for t in range(lowest, highest + 1) if projected_s(spent_s, done, costs, evaluated, t) <= target]
    return max(fitting, default=lowest)


def keep_or_change(current: int, fitted: int, current_end_s: float, budget_s: float) -> int:
    """The length a refit settles on: ``fitted`` when it is longer than ``current`` (more fits),
    or shorter and the ``current`` run is projected to end past ``1 - SAFETY / 3`` of the budget;
    else ``current``. The band between the two keeps the length from flipping by one epoch
    with every small change of the measured costs."""
    if fitted > current or (fitted < current and current_end_s > (1.0 - SAFETY / 3) * budget_s):
        return fitted
    return current


class TimeBudget(Hook):
    """Fits the run's epochs to ``hours`` (the module's rule); ``fractions`` are the options
    that follow the length (:attr:`~yoloxkit.engine.plan.RunPlan.epoch_fractions`)."""

    def __init__(self, hours: float, fractions: tuple[str, ...] = ()) -> None:
        self.budget_s, self.fractions = float(hours) * 3600.0, tuple(fractions)
        self.started, self.offset = clock(), None
        self.epoch_start: float | None = None
        self.last_step: float | None = None
        self.steps, self.fitted = 0, False
        self.train_s: list[float] = []
        self.eval_s: list[float] = []
        self.plain_s: list[float] = []

    def _attach(self, run: Run) -> None:
        """On the first event: the seconds spent before a resume, and the cap of the fit (the
        run's ``--epochs`` when it started), both kept in the run's state."""
        if self.offset is None:
            self.offset = float(run.state.time_used_s)
            if run.state.epochs_cap is None:
                run.state.epochs_cap = int(run.cfg.epochs)

    def spent(self, now: float) -> float:
        """Seconds of the budget spent at ``now`` (with those before a resume)."""
        return self.offset + now - self.started

    def before_step(self, run: Run, batch: Any) -> None:
        self._attach(run)
        if self.epoch_start is None:
            self.epoch_start, self.steps = clock(), 0

    def after_step(self, run: Run, losses: Any) -> None:
        self.last_step, self.steps = clock(), self.steps + 1
        run.state.time_used_s = self.spent(self.last_step)  # in the last.pth written when the epoch ends
        ipe = run.parts.iters_per_epoch
        probe = max(1, min(ipe - 1, max(10, ipe // 20)))
        if not self.fitted and self.steps == probe and run.state.epoch < run.parts.no_aug_start_epoch:
            train_s = (self.last_step - self.epoch_start) / self.steps * ipe
            self.refit(run, self.last_step, EpochCosts(train_s, train_s * self._eval_share(run)))

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        self._attach(run)
        now = clock()
        if self.last_step is not None and self.steps == run.parts.iters_per_epoch:
            self.train_s.append(self.last_step - self.epoch_start)
            (self.eval_s if end.metric is not None else self.plain_s).append(now - self.last_step)
        self.epoch_start = self.last_step = None
        run.state.time_used_s = self.spent(now)
        if self.train_s and run.state.epoch < run.parts.no_aug_start_epoch:
            self.refit(run, now, self.costs())

    def costs(self) -> EpochCosts:
        """The mean measured costs (an evaluation guessed from the steps until one is timed)."""
        train_s = fmean(self.train_s)
        plain_s = fmean(self.plain_s) if self.plain_s else 0.0
        eval_s = fmean(self.eval_s) if self.eval_s else plain_s + train_s * EVAL_COST_SHARE
        return EpochCosts(train_s, eval_s, plain_s)

    @staticmethod
    def _eval_share(run: Run) -> float:
        parts = run.parts
        if parts.val_data is None or run.cfg.eval_interval == 0:
            return 0.0
        trained = parts.iters_per_epoch * run.cfg.batch_size
        return EVAL_COST_SHARE * len(parts.val_data.records) / max(trained, 1)

    def refit(self, run: Run, now: float, costs: EpochCosts) -> None:
        """Fit the epochs to what is left of the budget; apply and log a change."""
        cfg, parts, state = run.cfg, run.parts, run.state
        done, has_val = state.epoch, parts.val_data is not None
        trials = {total: dataclasses.replace(cfg, **length_settings(cfg, total, self.fractions))
                  for total in range(max(done, 1), max(state.epochs_cap, done + 1) + 1)}
        lowest = next((t for t, trial in trials.items() if t > done and trial.no_aug_start_epoch >= done), max(trials))
        spent = self.spent(now)
        evaluated = lambda e, t: Evaluator.due(trials[t], e, has_val)  # noqa: E731
        epochs = fit_epochs(self.budget_s, spent, done, costs, evaluated, lowest, max(trials))
        first, self.fitted = not self.fitted, True
        if not first and cfg.epochs in trials:
            epochs = keep_or_change(cfg.epochs, epochs, projected_s(spent, done, costs, evaluated, cfg.epochs), self.budget_s)
        epochs = int(dist_utils.broadcast_object(epochs))
        if epochs == cfg.epochs and not first:
            return
        set_run_epochs(cfg, parts, epochs, self.fractions)
        run.logger.log(f"--time {self.budget_s / 3600:g} h: {spent / 60:.1f} min spent, an epoch takes {costs.train_s:.1f} s"
                       f" and its evaluation {costs.eval_s:.1f} s; " + describe_length(cfg, parts, state.global_iter))
        run.logger.write_config(cfg.to_dict(), run.out_dir)
