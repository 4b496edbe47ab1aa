"""Changing a run's length while it runs: a time budget's fit (:mod:`.time_budget`) and
``--resume --epochs N`` both make the run one of ``N`` epochs from the next iteration on.

The rule (docs/training.md, "Changing the length of a run"): the run continues as if it had been
planned for ``N`` epochs from the start. The iterations already done keep the learning rates
they had; from the next one the lr follows the ``N``-epoch schedule (warm-up, cosine down to
``min_lr_ratio`` of the base lr ``no_aug_epochs`` before the end, then flat), and the
no-augmentation tail is the last ``no_aug_epochs`` of ``N`` (the fine-tune recipe's fractions of
``N`` where not given). A finished run extended this way restarts at the ``N``-epoch cosine's
value for its position, a warm restart, and has Mosaic/MixUp again until the new tail; the L1
loss, once on, stays on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .builder import TrainComponents
from .config import ConfigError, TrainConfig
from .recipes import preset_value
from .state import TrainState

__all__ = ["length_settings", "set_run_epochs", "describe_length", "resume_length", "report_resume"]


def length_settings(cfg: TrainConfig, epochs: int, fractions: tuple[str, ...]) -> dict[str, Any]:
    """The options of ``cfg`` that change when the run becomes ``epochs`` long: ``epochs`` and
    each of ``fractions`` (a fraction of the run in ``cfg.recipe``)."""
    return {"epochs": int(epochs), **{name: preset_value(cfg.recipe, name, int(epochs)) for name in fractions}}


def set_run_epochs(cfg: TrainConfig, parts: TrainComponents, epochs: int, fractions: tuple[str, ...]) -> None:
    """Make the run of ``cfg`` and ``parts`` one of ``epochs`` epochs (the module's rule), in
    place: the options, the lr schedule, and the no-augmentation boundary of the loop and the
    dataset."""
    for name, value in length_settings(cfg, epochs, fractions).items():
        setattr(cfg, name, value)
    schedule = parts.schedule
    schedule.epochs, schedule.warmup_epochs, schedule.no_aug_epochs = cfg.epochs, cfg.warmup_epochs, cfg.no_aug_epochs
    parts.no_aug_start_epoch = cfg.no_aug_start_epoch
    parts.pipeline.dataset.close_mosaic_at = cfg.no_aug_start_epoch


def describe_length(cfg: TrainConfig, parts: TrainComponents, next_iter: int) -> str:
    """One line on the schedule of a run whose next (0-based) iteration is ``next_iter``."""
    schedule, start = parts.schedule, cfg.no_aug_start_epoch
    tail = f"no-aug tail epochs {start + 1}-{cfg.epochs}" if start + 1 < cfg.epochs else f"no-aug epoch {cfg.epochs}"
    return (f"{cfg.epochs} epochs: lr {schedule.lr(next_iter):.3g} at iteration {next_iter + 1}, cosine down to"
            f" {schedule.min_lr:.3g} by the end of epoch {cfg.epochs - cfg.no_aug_epochs}, Mosaic/MixUp until epoch"
            f" {start}, {tail}")


def resume_length(
    cfg: TrainConfig, parts: TrainComponents, state: TrainState, fractions: tuple[str, ...], out_dir: Path,
    log: Callable[[str], None],
) -> None:
    """After a resume restored ``state`` and ``parts`` (the schedule as saved): make the run as
    long as ``cfg.epochs`` (the saved length, unless ``--epochs`` was given again). Refuses, with
    :class:`ConfigError`, fewer epochs than are done, and continuing an early-stopped run without
    more epochs than it had."""
    saved, done = parts.schedule.epochs, state.epoch
    if state.stop_reason is not None:
        if cfg.epochs <= saved:
            raise ConfigError(f"--resume: {out_dir} {state.stop_reason}; there is nothing to continue"
                              f" (--epochs larger than {saved} trains on)")
        log(f"--resume: the early-stopped run trains on; early stopping counts the evaluations after epoch {done}")
        state.stop_reason, state.patience_from = None, done
    if cfg.epochs == saved:
        return
    if cfg.epochs < done:
        raise ConfigError(f"--resume --epochs {cfg.epochs}: {out_dir} has trained {done} epochs already; give more"
                          f" to train on, or leave --epochs out to finish its {saved}")
    set_run_epochs(cfg, parts, cfg.epochs, fractions)
    log(f"--resume --epochs {cfg.epochs}: the run of {saved} epochs continues as one of "
        + describe_length(cfg, parts, state.global_iter))


def report_resume(state: TrainState, cfg: TrainConfig, path: Path, log: Callable[[str], None]) -> None:
    """The log lines of a resume from ``path``: where the run continues, and a missing ``best.pth``."""
    if state.pending_row is not None:
        log(f"resumed from {path}: epoch {state.epoch} trained, its evaluation and records run first")
    elif state.epoch >= cfg.epochs:
        log(f"resumed from {path}: all {state.epoch} epochs are done; writing the plots and results again"
            " (a larger --epochs trains on)")
    else:
        log(f"resumed from {path}: epoch {state.epoch + 1}, iteration {state.iter_in_epoch} of the epoch")
    best = path.parent / "best.pth"
    if state.best_epoch is not None and not best.is_file():
        log(f"warning: {best} (epoch {state.best_epoch}) is missing; the next epoch that improves writes it again")
