"""A training run worked out once: :func:`plan_run` turns a :class:`TrainConfig` into a frozen
:class:`RunPlan` (resolved options, run folder, process, starting weights) before anything is
built. The command line calls it as its preflight (a missing dataset, an ``--out`` holding
another run or a missing download fail there, in seconds); the trainer, the builder and the
hooks read the plan and never resolve again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from ..errors import DatasetError
from ..weights import WeightsSource, resolve_weights_source
from . import distributed as dist_utils
from .config import ConfigError, TrainConfig
from .domain_shift import shift_rule
from .resolve import EPOCH_FRACTION_FIELDS
from .run_dir import resolve_run_dir, restarts
from .saved_run import adopt_saved_settings, given_options, read_saved_config

__all__ = ["RunPlan", "plan_run", "starting_weights", "describe_recipe"]


@dataclass(frozen=True)
class RunPlan:
    """One training run as planned: ``cfg`` is resolved (every default filled, ``out`` the
    folder chosen, ``resume`` off when the run :attr:`restarted`), ``dist`` the process (rank,
    world size, device) and ``weights`` where the starting weights come from (``None``: random,
    or restored by ``--resume``)."""

    cfg: TrainConfig
    dist: dist_utils.DistInfo
    weights: WeightsSource | None
    restarted: bool = False  # --resume found a run stopped before its first last.pth: started again
    #: the options that follow the run's length when it changes (--time, --resume --epochs): the
    #: fine-tune's warm-up and no-aug fractions, where not given
    epoch_fractions: tuple[str, ...] = ()
    #: lines for the log: a restart, the options a resume changed
    notes: tuple[str, ...] = ()

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.out)

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def use_amp(self) -> bool:
        """Mixed precision: asked for (``--amp``) and on a CUDA device."""
        return bool(self.cfg.amp) and self.device.type == "cuda"

    @property
    def multiscale(self) -> bool:
        """Whether the input size changes during training (never without augmentation)."""
        return bool(self.cfg.multiscale) and not self.cfg.no_aug

    @property
    def no_aug_start_epoch(self) -> int:
        """The epoch from which Mosaic/MixUp are off and L1 on (:attr:`TrainConfig.no_aug_start_epoch`)."""
        return self.cfg.no_aug_start_epoch


def starting_weights(cfg: TrainConfig) -> WeightsSource | None:
    """Where a run's weights come from: ``None`` for random weights (``"none"``) and on resume,
    else ``--weights`` (a path or a zoo name) or, without it, the model's COCO weights (bundled
    for yolox-nano, the cached official download otherwise). Offline without a cached file it
    raises :class:`~yoloxkit.errors.DownloadError` naming the URL, ``--weights PATH`` and
    ``--weights none``."""
    if cfg.resume or cfg.from_scratch:
        return None
    return resolve_weights_source(cfg.model, cfg.weights, scratch_hint=True)


def plan_run(cfg: TrainConfig | RunPlan, given: Iterable[str] | None = None) -> RunPlan:
    """Plan the run of ``cfg`` (a plan is returned as it is): resolve the options, check that the
    dataset path exists, start the process group under torchrun, pick the run folder (rank 0
    picks, every rank uses it; an ``--out`` holding another run, or one another run is writing
    into, is refused) and find the starting weights (a missing download is tried, and fails with
    one line, now). ``--resume`` finds the run's folder first and takes its own settings from its
    ``config.json`` (:mod:`.saved_run`) before resolving; ``given`` names the options given (the
    CLI's flags and YAML keys; ``None``: those that differ from their defaults)."""
    if isinstance(cfg, RunPlan):
        return cfg
    names, notes = given_options(cfg, given), ()
    if cfg.resume:  # the run's own settings, unless given again (every rank reads)
        cfg, notes = _resumed(cfg, names)
    if not cfg.data:
        raise ConfigError("--data is required (a dataset directory or data YAML), on the command line or in --config")
    cfg = cfg.resolved()
    if not Path(cfg.data).expanduser().exists():  # before a download that may take minutes
        raise DatasetError(f"{cfg.data}: dataset path does not exist")
    dist = dist_utils.init_distributed(cfg.device)
    if dist.device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available")
    if not cfg.resume:
        out = resolve_run_dir(cfg.out, cfg.resume, cfg.exist_ok) if dist.rank == 0 else None
        cfg = dataclasses.replace(cfg, out=str(dist_utils.broadcast_object(out)))
    restarted = restarts(cfg.out, cfg.resume)
    if restarted:  # stopped before its first last.pth: nothing to continue, start it again
        cfg = dataclasses.replace(cfg, resume=False, exist_ok=True)
        notes = (f"--resume: {cfg.out} has no last.pth yet (the run stopped before its first epoch ended);"
                 " starting it again",) + notes
    fractions = tuple(n for n in EPOCH_FRACTION_FIELDS if n not in names) if cfg.recipe == "finetune" else ()
    return RunPlan(cfg, dist, starting_weights(cfg), restarted, fractions, notes)


def _resumed(cfg: TrainConfig, given: frozenset[str]) -> tuple[TrainConfig, tuple[str, ...]]:
    """``cfg`` of a ``--resume`` with the run's folder found and its saved settings taken."""
    found = resolve_run_dir(cfg.out, True, cfg.exist_ok)
    saved = read_saved_config(found)
    if not saved and not cfg.data:
        raise ConfigError(f"--resume: {found / 'config.json'} is missing or unreadable, so the run's settings are"
                          " unknown; give them again (--data, --model, --size, ...)")
    return adopt_saved_settings(dataclasses.replace(cfg, out=str(found)), saved, given, found / "config.json")


def _trained_parts(cfg: TrainConfig) -> str:
    frozen = {0: "", 1: " but the stem"}.get(cfg.frozen_stages, f" but the first {cfg.frozen_stages} backbone stages")
    lr = f" (backbone and neck at {cfg.trunk_lr_scale:g}x the lr)" if cfg.trunk_lr_scale != 1.0 else ""
    return f"the whole network trains{frozen}{lr}"


def describe_recipe(cfg: TrainConfig) -> str:
    """One line naming the recipe of the resolved ``cfg`` and what it changes."""
    plain = cfg.epochs - cfg.no_aug_start_epoch
    adamw = f" (AdamW, weight decay {cfg.weight_decay:g})" if cfg.optimizer == "adamw" else ""
    schedule = f"{cfg.epochs} epochs at lr {cfg.lr:g}{adamw}, warm-up {cfg.warmup_epochs:g} epoch{'' if cfg.warmup_epochs == 1 else 's'}, "
    last = f"the last {plain} epoch{'' if plain == 1 else 's'}"
    if cfg.l1_from_start:
        schedule += (f"{last} without Mosaic/MixUp, " if cfg.mosaic or cfg.mixup else "no Mosaic/MixUp, ") + "L1 throughout"
    elif cfg.mosaic or cfg.mixup:
        schedule += f"{last} without Mosaic/MixUp and with L1"
    else:
        schedule += f"no Mosaic/MixUp, L1 in {last}"
    if cfg.recipe == "official":
        return f"recipe official (the official YOLOX recipe: {schedule})"
    parts = [schedule]
    if cfg.freeze_detector:
        parts.append("detector frozen, only the PSS branch trains" + ("" if cfg.ema else ", no EMA"))
    elif cfg.freeze_trunk:
        parts.append("backbone and neck frozen")
    else:
        parts.append(_trained_parts(cfg))
    if cfg.recalibrate_bn:
        parts.append("BatchNorm statistics re-estimated on the training images")
    if cfg.loss_normalizer == "running":
        parts.append("losses divided by a running mean of the positives")
    if cfg.fit_new_classes:
        parts.append("new class rows fitted on the training labels")
    if cfg.ema and not cfg.ema_ramp:
        parts.append(f"EMA {cfg.ema_decay:g} from the starting weights")
    if cfg.eval_start:
        parts.append("the starting weights evaluated as epoch 0")
        rule = shift_rule(cfg)
        if rule is not None:
            changes = ([f"{rule.lr_scale:g}x the lr"] if rule.lr_scale != 1.0 else []) + (["L1 throughout"] if rule.l1 else [])
            parts.append(f"if they score below the model's COCO AP (a domain shift): {' and '.join(changes)}")
    return f"recipe finetune ({'; '.join(parts)}); --recipe official for the official recipe"
