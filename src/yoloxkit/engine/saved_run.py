"""What a resumed run keeps of its own settings: the options that decide its length and its
optimiser, read from the run folder's ``config.json`` (written when the run started, and again
whenever the run changed them: the domain-shift rule, a time budget's fit).

A resume takes each of :data:`KEPT_ON_RESUME` from the saved run unless it is given again; an
``--epochs`` given with ``--resume`` is the new length of the run (the warm-up and no-aug
lengths then follow the recipe for it, unless given too) and turns a saved ``--time`` off.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..io import read_json_mapping

__all__ = ["KEPT_ON_RESUME", "adopt_saved_settings", "read_saved_config"]

#: options a resumed run takes from its saved config.json when they are not given again
KEPT_ON_RESUME = ("epochs", "warmup_epochs", "no_aug_epochs", "patience", "min_delta", "time", "optimizer", "weight_decay")
_FOLLOW_EPOCHS = ("warmup_epochs", "no_aug_epochs", "time")  # re-derived when --epochs is given again


def read_saved_config(out_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.json`` as a mapping; empty when there is none or it cannot be read."""
    return read_json_mapping(Path(out_dir) / "config.json")


def adopt_saved_settings(cfg: Any, saved: dict[str, Any]) -> Any:
    """``cfg`` (unresolved: ``None`` is "not given") with each option of :data:`KEPT_ON_RESUME`
    it leaves ``None`` taken from ``saved``."""
    epochs_given = cfg.epochs is not None
    changes = {
        name: saved[name]
        for name in KEPT_ON_RESUME
        if getattr(cfg, name) is None and saved.get(name) is not None and not (epochs_given and name in _FOLLOW_EPOCHS)
    }
    return dataclasses.replace(cfg, **changes) if changes else cfg
