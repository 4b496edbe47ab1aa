"""Experiment trackers (MLflow, Weights & Biases) as training hooks: ``--mlflow [URI]`` and
``--wandb [PROJECT]`` (docs/training_hooks.md, "Experiment trackers").

Each tracker is an optional extra (``pip install 'yoloxkit[mlflow]'``, ``'yoloxkit[wandb]'``),
imported only here, when a run asks for it, and checked when the trainer is made, before any
training. What the hooks log and when: :mod:`.tracker_base`; the trackers: :mod:`.tracker_mlflow`,
:mod:`.tracker_wandb`.
"""

from __future__ import annotations

from .config import TrainConfig
from .hooks import Hook
from .tracker_base import TrackerError, TrackerHook
from .tracker_mlflow import MlflowHook, mlflow_hook
from .tracker_wandb import WandbHook, wandb_hook

__all__ = ["tracker_hooks", "TrackerHook", "TrackerError", "MlflowHook", "WandbHook"]


def tracker_hooks(cfg: TrainConfig, is_main: bool = True) -> list[Hook]:
    """The tracker hooks ``cfg`` asks for (``--mlflow``, ``--wandb``); none by default or on a rank
    other than 0. Raises :class:`~yoloxkit.errors.MissingDependencyError` (with the install
    command) when a tracker's library is missing and :class:`ConfigError` (one line) when a
    tracker cannot work (an MLflow store that cannot be written, W&B online without a login)."""
    if not is_main:
        return []
    hooks: list[Hook] = []
    if cfg.mlflow is not None:
        hooks.append(mlflow_hook(cfg.mlflow))
    if cfg.wandb is not None:
        hooks.append(wandb_hook(cfg.wandb))
    return hooks
