"""Where a training run stands, and the one place that saves and restores it.

A checkpoint's ``"train_state"`` holds the state dicts of the run's stateful parts (model, EMA,
optimizer, schedule, grad scaler, by name), the fields of :class:`TrainState`, the RNG state
and the configuration; :meth:`TrainState.to_dict` writes it and :meth:`TrainState.load` reads
it back, both from the same list of fields and the same mapping of parts.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

import torch

from .checkpoint import capture_rng_state, read_training_state, save_training_checkpoint
from .config import ConfigError

__all__ = ["TrainState", "Stateful"]


class Stateful(Protocol):
    """A part of the run with a state dict (module, EMA, optimizer, schedule, grad scaler)."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


@dataclass
class TrainState:
    """Progress of a run: 0-based ``epoch`` and ``iter_in_epoch`` (the position to continue
    from), ``global_iter`` (iterations done), the best validation metric so far with its name,
    and one history row per finished epoch."""

    epoch: int = 0
    iter_in_epoch: int = 0
    global_iter: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None  # 1-based epoch of best_metric; 0: the starting weights
    start_metric: float | None = None  # the starting weights' metric (``eval_start``)
    metric_name: str = "AP"
    history: list[dict] = field(default_factory=list)
    # the evaluation of the best epoch (EvalResult.to_json()), for the end-of-run table
    best_eval: dict | None = None
    # the epoch in progress: loss sums over its ``iter_in_epoch`` iterations and seconds so far
    # (a resume mid-epoch continues them)
    epoch_sums: dict[str, float] = field(default_factory=dict)
    epoch_time: float = 0.0
    # a finished epoch whose evaluation, history row and best.pth are still to come: last.pth is
    # written before evaluating, and a resume from it runs what is pending first
    pending_row: dict | None = None
    # unreadable images skipped so far, by split
    skipped_images: dict[str, list[str]] = field(default_factory=dict)
    # why the run ended before its last epoch (early stopping); a resume refuses to continue it
    stop_reason: str | None = None
    patience_from: int = 0  # early stopping counts the evaluations after this epoch (a resume that trains on)
    # --time: seconds spent so far (up to the last step or epoch end) and the most epochs the budget may fit
    time_used_s: float = 0.0
    epochs_cap: int | None = None

    def __post_init__(self) -> None:
        self.epoch, self.iter_in_epoch, self.global_iter = int(self.epoch), int(self.iter_in_epoch), int(self.global_iter)
        self.metric_name = str(self.metric_name or "AP")
        self.history = list(self.history or [])
        self.epoch_sums = {str(k): float(v) for k, v in (self.epoch_sums or {}).items()}
        self.epoch_time = float(self.epoch_time)
        self.skipped_images = {str(k): list(v) for k, v in (self.skipped_images or {}).items()}

    def start_epoch(self) -> None:
        """Clear the running sums once an epoch is finished (its row is made)."""
        self.epoch_sums, self.epoch_time = {}, 0.0

    def add_losses(self, losses: Mapping[str, float]) -> None:
        """Add one iteration's loss terms to the epoch's sums."""
        for key, value in losses.items():
            self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + float(value)

    def epoch_means(self) -> dict[str, float]:
        """The epoch's mean loss terms over its ``iter_in_epoch`` iterations (before and after
        a resume)."""
        return {k: v / max(self.iter_in_epoch, 1) for k, v in self.epoch_sums.items()}

    def update_best(self, epoch: int, metric: float, report: dict | None = None) -> bool:
        """The one place that decides "best": whether ``metric`` of 1-based ``epoch`` (0: the
        starting weights) beats the best so far; if so it becomes the best."""
        if self.best_metric is not None and not metric > self.best_metric:
            return False
        self.best_metric, self.best_epoch, self.best_eval = metric, epoch, report
        return True

    def close_epoch(self, row: dict[str, Any]) -> None:
        """The pending epoch is done: its (evaluated) ``row`` joins the history."""
        self.history.append(row)
        self.pending_row = None

    def note_skipped(self, split: str, paths: list[str]) -> list[str]:
        """Record unreadable images of ``split``; returns those not seen before."""
        known = self.skipped_images.setdefault(split, [])
        new = [str(p) for p in paths if str(p) not in known]
        known.extend(new)
        return new

    def to_dict(self, parts: Mapping[str, Stateful | None], config: dict[str, Any]) -> dict[str, Any]:
        """The ``"train_state"`` of a checkpoint: each part's state dict (``None`` for an absent
        part), these fields, the RNG state and ``config``."""
        state: dict[str, Any] = {name: None if part is None else part.state_dict() for name, part in parts.items()}
        state.update(dataclasses.asdict(self))
        state["rng"] = capture_rng_state()
        state["config"] = config
        return state

    def load(self, state: Mapping[str, Any], parts: Mapping[str, Stateful | None]) -> dict[str, Any] | None:
        """Inverse of :meth:`to_dict`: restore every part present both here and in ``state``,
        take over the fields, and return the saved RNG state (the caller restores it where
        the run continues)."""
        for name, part in parts.items():
            if part is not None and state.get(name) is not None:
                part.load_state_dict(state[name])
        for name in (f.name for f in dataclasses.fields(self)):
            if name in state:
                setattr(self, name, state[name])
        self.__post_init__()
        return state.get("rng")

    def save(
        self,
        path: str | os.PathLike,
        weights: dict[str, torch.Tensor],
        names: list[str],
        model_name: str,
        parts: Mapping[str, Stateful | None] | None = None,
        config: dict[str, Any] | None = None,
        input_size: int | None = None,
    ) -> Path:
        """Write a checkpoint of the inference ``weights``; with ``parts`` it is resumable.
        ``input_size`` (the training size) is stored as ``"input_size": [h, w]``, so that
        inference and export default to it; ``"train_data"`` (the dataset and training split of
        ``config``) is where ``export --int8`` finds its default calibration images."""
        extra: dict[str, Any] = {"epoch": self.epoch, "metric": self.best_metric}
        if config and config.get("data"):  # what `export --int8` calibrates on by default
            extra["train_data"] = {"data": str(Path(config["data"]).resolve()), "split": config.get("train_split")}
        if input_size is not None:
            extra["input_size"] = [int(input_size), int(input_size)]
        return save_training_checkpoint(
            path,
            weights=weights,
            names=names,
            model_name=model_name,
            train_state=None if parts is None else self.to_dict(parts, config or {}),
            **extra,
        )

    def restore(
        self, path: str | os.PathLike, parts: Mapping[str, Stateful | None], names: list[str], model_name: str | None = None
    ) -> dict[str, Any] | None:
        """Load the resumable checkpoint ``path`` into ``parts`` and these fields; return the
        saved RNG state. Raise :class:`ConfigError` when there is none, or its classes or (given
        ``model_name``) its model differ."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--resume: no checkpoint to resume from at {path}")
        ckpt = read_training_state(path)
        if list(ckpt.get("names") or []) != list(names):
            raise ConfigError(f"--resume: {path} was trained on other classes than --data")
        saved_model = ckpt.get("model_name")
        if model_name and saved_model and saved_model != model_name:
            raise ConfigError(f"--resume: {path} holds a {saved_model} run, not {model_name} (--model)")
        return self.load(ckpt["train_state"], parts)
