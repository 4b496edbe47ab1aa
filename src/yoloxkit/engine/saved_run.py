"""What a resumed run keeps of its own settings: every option of the run folder's ``config.json``
(written when the run started, and again whenever the run changed one: the domain-shift rule, a
time budget's fit, a resume).

On ``--resume`` an option not given again is taken from ``config.json``, so that ``yoloxkit
train --out RUN --resume`` alone continues the run as it was: its model, data and splits, input
size, batch, length, recipe, optimiser, seed and the rest. An option given again with the saved
value is fine; one given with another value is refused with one line naming the flag and both
values, except the options of :data:`CHANGEABLE_ON_RESUME`, which are applied and reported. An
``--epochs`` given with another value is the new length of the run (:mod:`.run_length`): the
warm-up and no-aug lengths then follow the recipe for it, unless given too, and a saved
``--time`` is turned off.

An option counts as given when it is on the command line or in the ``--config`` YAML (the CLI
says which); through the Python API, when it differs from the field's default.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

from ..errors import UnknownModelError
from ..io import read_json_mapping
from ..models import get_spec
from .config import ConfigError, TrainConfig, update_config

__all__ = ["CHANGEABLE_ON_RESUME", "given_options", "adopt_saved_settings", "read_saved_config"]

#: options a resume may change: applied, and reported in one line each
CHANGEABLE_ON_RESUME = (
    "epochs", "time", "patience", "min_delta", "workers", "device", "eval_interval", "cache_ram", "progress", "plots",
    "tensorboard", "visualize_assign", "mlflow", "wandb", "extra",
)
_FOLLOW_EPOCHS = ("warmup_epochs", "no_aug_epochs", "time")  # re-derived when --epochs changes the length
_NOT_SETTINGS = ("out", "resume", "exist_ok")  # how the run is found, not what it is


def read_saved_config(out_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.json`` as a mapping; empty when there is none or it cannot be read."""
    return read_json_mapping(Path(out_dir) / "config.json")


def given_options(cfg: TrainConfig, explicit: Iterable[str] | None = None) -> frozenset[str]:
    """The options of ``cfg`` that were given: ``explicit`` (field names) when known, else the
    fields whose value differs from their default."""
    if explicit is not None:
        return frozenset(str(name).replace("-", "_") for name in explicit)
    default = TrainConfig()
    return frozenset(f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(default, f.name))


def _flag(name: str, value: Any = None) -> str:
    """The flag of option ``name`` (the YAML key for one without a flag); for a switch, the flag
    that gives ``value``."""
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    option = field.metadata.get("option")
    if option is None:
        return name
    if option.kind == "toggle" and value is False:
        return "--no-" + name.replace("_", "-")
    return option.flag_for(name)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return "none" if value is None else str(value)


def _given(name: str, value: Any) -> str:
    """How option ``name`` was given: ``--batch-size 8``, ``--no-mosaic (off)``."""
    flag = _flag(name, value)
    return f"{flag} ({_text(value)})" if isinstance(value, bool) else f"{flag} {_text(value)}"


def _canonical(name: str, value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if name == "model" and isinstance(value, str):
        try:
            return get_spec(value).name
        except UnknownModelError:
            return value
    if name in ("data", "weights") and isinstance(value, str) and value and Path(value).expanduser().exists():
        return str(Path(value).expanduser().resolve())
    return value


def _same(name: str, given: Any, saved: Any) -> bool:
    return _canonical(name, given) == _canonical(name, saved)


def adopt_saved_settings(
    cfg: TrainConfig, saved: dict[str, Any], given: frozenset[str], source: str | Path
) -> tuple[TrainConfig, tuple[str, ...]]:
    """``cfg`` (unresolved) with every option not in ``given`` taken from ``saved`` (the run's
    ``config.json``, at ``source``), and the lines that report the options a resume changes.
    Raises :class:`ConfigError` for a given option that differs from the saved one and may not
    change on a resume."""
    saved = {k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(cfg)} and k not in _NOT_SETTINGS}
    new_length = "epochs" in given and saved.get("epochs") is not None and not _same("epochs", cfg.epochs, saved["epochs"])
    adopted: dict[str, Any] = {}
    notes: list[str] = []
    for name, value in saved.items():
        if name not in given:
            if not (new_length and name in _FOLLOW_EPOCHS):
                adopted[name] = value
            continue
        mine = getattr(cfg, name)
        if _same(name, mine, value):
            continue
        if name in CHANGEABLE_ON_RESUME or (new_length and name in _FOLLOW_EPOCHS):
            if name != "epochs":  # .run_length reports the new length
                notes.append(f"--resume: {_given(name, mine)} applies from here on (the run had {_text(value)})")
            continue
        raise ConfigError(
            f"--resume: {_given(name, mine)} differs from the run's {_text(value)} ({source}); leave"
            f" {_flag(name, mine)} out to continue the run as it was, or train into another --out")
    return update_config(cfg, adopted, str(source)), tuple(notes)
