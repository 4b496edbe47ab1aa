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

    def __post_init__(self) -> None:
        self.epoch, self.iter_in_epoch, self.global_iter = int(self.epoch), int(self.iter_in_epoch), int(self.global_iter)
        self.metric_name = str(self.metric_name or "AP")
        self.history = list(self.history or [])

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
    ) -> Path:
        """Write a checkpoint of the inference ``weights``; with ``parts`` it is resumable."""
        return save_training_checkpoint(
            path,
            weights=weights,
            names=names,
            model_name=model_name,
            train_state=None if parts is None else self.to_dict(parts, config or {}),
            epoch=self.epoch,
            metric=self.best_metric,
        )

    def restore(self, path: str | os.PathLike, parts: Mapping[str, Stateful | None], names: list[str]) -> dict[str, Any] | None:
        """Load the resumable checkpoint ``path`` into ``parts`` and these fields; return the
        saved RNG state. Raise :class:`ConfigError` when there is none or its classes differ."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--resume: no checkpoint to resume from at {path}")
        ckpt = read_training_state(path)
        if list(ckpt.get("names") or []) != list(names):
            raise ConfigError(f"--resume: {path} was trained on other classes than --data")
        return self.load(ckpt["train_state"], parts)
