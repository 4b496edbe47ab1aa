"""Early stopping (``--patience N``, ``--min-delta``): a run ends when ``N`` evaluations in a row
bring no improvement of the validation metric.

An evaluation improves when its metric exceeds the reference by more than ``min_delta`` points;
the reference is the first evaluation (the starting weights' epoch 0 when the recipe evaluates
them) and then each improving one (as Keras' ``EarlyStopping`` does: a rise smaller than
``min_delta`` neither counts nor moves the reference). Patience counts evaluations, not epochs:
with ``--eval-interval 10`` a patience of 5 waits 50 epochs. The stop is a normal end:
``best.pth`` holds the best epoch, ``last.pth`` the state, and ``--resume`` continues only with
more ``--epochs`` than the run had.
"""

from __future__ import annotations

from typing import Sequence

from .hooks import EpochEnd, Hook, Run
from .state import TrainState

__all__ = ["stale_evaluations", "EarlyStopping", "stop_summary"]


def stale_evaluations(metrics: Sequence[float], min_delta: float = 0.0, since: int = 0) -> int:
    """How many of the latest evaluations in ``metrics`` (in order) brought no improvement of
    more than ``min_delta`` over the reference (the module's rule); only evaluations at index
    ``since`` or later are counted."""
    if not metrics:
        return 0
    reference, stale = metrics[0], 0
    for index, metric in enumerate(metrics[1:], start=1):
        if metric > reference + min_delta:
            reference, stale = metric, 0
        elif index >= since:
            stale += 1
    return stale


def _evaluations(state: TrainState) -> tuple[list[float], int]:
    """The run's evaluated metrics in order (epoch 0 first, when evaluated) and the index of the
    first evaluation after ``state.patience_from``."""
    evaluated = [(0, state.start_metric)] if state.start_metric is not None else []
    evaluated += [(int(row["epoch"]), float(row["ap"])) for row in state.history if "ap" in row]
    since = next((i for i, (epoch, _) in enumerate(evaluated) if epoch > state.patience_from), len(evaluated))
    return [metric for _, metric in evaluated], since


class EarlyStopping(Hook):
    """Ends the run (``run.state.stop_reason``) after ``patience`` evaluations without improvement."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = int(patience), float(min_delta)

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        state = run.state
        if end.metric is None or end.epoch >= run.cfg.epochs:
            return
        metrics, since = _evaluations(state)
        stale = stale_evaluations(metrics, self.min_delta, since)
        if stale < self.patience:
            return
        delta = f" by more than {self.min_delta:g}" if self.min_delta else ""
        state.stop_reason = (f"stopped early after epoch {end.epoch} of {run.cfg.epochs}: {stale} evaluations in a row"
                             f" without an improvement of {state.metric_name}{delta} (--patience {self.patience})")
        run.logger.log(state.stop_reason)


def stop_summary(state: TrainState) -> str | None:
    """The closing line of an early-stopped run: why, when, and the best epoch; ``None`` otherwise."""
    if state.stop_reason is None:
        return None
    best = "" if state.best_epoch is None else (
        f"; best epoch {state.best_epoch} ({state.metric_name} {state.best_metric:.2f}), in best.pth")
    return state.stop_reason + best
