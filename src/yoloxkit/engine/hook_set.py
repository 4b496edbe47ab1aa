"""The hooks of one run, in the order they run: the built-in ones (:func:`.hooks.default_hooks`),
those the options ask for (early stopping, a time budget, experiment trackers), then the user's."""

from __future__ import annotations

from typing import Iterable

from .experiment_trackers import tracker_hooks
from .hooks import Hook, default_hooks
from .plan import RunPlan
from .stopping import EarlyStopping
from .time_budget import TimeBudget

__all__ = ["run_hooks"]


def run_hooks(plan: RunPlan, hooks: Iterable[Hook] = ()) -> list[Hook]:
    """Every hook of the run of ``plan``, ``hooks`` (the user's) last. The time budget comes after
    the hooks that write files, so that it times them; the trackers after the plots they log."""
    cfg = plan.cfg
    chosen = default_hooks(cfg)
    if cfg.patience:
        chosen.append(EarlyStopping(cfg.patience, cfg.min_delta or 0.0))
    if cfg.time:
        chosen.append(TimeBudget(cfg.time, plan.epoch_fractions))
    return chosen + tracker_hooks(cfg, plan.dist.rank == 0) + list(hooks)
