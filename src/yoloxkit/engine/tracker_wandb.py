"""``--wandb [PROJECT]``: the training run logged to Weights & Biases (the ``wandb`` extra).

``PROJECT`` (default ``yoloxkit``) may be ``ENTITY/PROJECT``. W&B's own settings apply:
``WANDB_MODE=offline`` keeps everything on disk (``wandb sync`` uploads it later),
``WANDB_MODE=disabled`` turns it off, ``WANDB_DIR`` moves its files (default: ``OUT/wandb``).
Online, a missing login fails when the trainer is made, in one line, rather than at a prompt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..optional import import_optional
from .config_checks import ConfigError
from .hooks import Run
from .tracker_base import TrackerHook, metric_key, one_line

__all__ = ["WandbHook", "wandb_hook", "DEFAULT_PROJECT"]

DEFAULT_PROJECT = "yoloxkit"
_HINT = "--wandb needs Weights & Biases: pip install 'yoloxkit[wandb]'"
_LOCAL_MODES = ("offline", "dryrun", "disabled")
_BAD_PROJECT_CHARACTERS = set("\\#?%:")


def _mode(wandb: Any) -> str:
    """W&B's mode: ``WANDB_MODE``, else its settings files (``wandb offline``), else online."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"].lower()
    try:
        from wandb.sdk import wandb_setup  # reads W&B's settings files, starts nothing

        return str(wandb_setup.singleton().settings.mode).lower()
    except Exception:
        return "online"


def _check_login(wandb: Any) -> None:
    """:class:`ConfigError` when W&B would log online without credentials (it would prompt, or
    fail at the start of training). Needs no network: the key is not verified here."""
    if os.environ.get("WANDB_API_KEY") or getattr(wandb, "run", None) is not None:
        return
    try:
        logged_in = wandb.login(verify=False, prompt=False)
    except TypeError:  # wandb < 0.30 has no prompt=False: wandb.init reports a missing login itself
        return
    except Exception as exc:
        raise ConfigError(f"--wandb: {one_line(exc)}") from None
    if not logged_in:
        raise ConfigError("--wandb: not logged in to W&B: run `wandb login` or set WANDB_API_KEY"
                          " (WANDB_MODE=offline keeps the run on disk, to upload later with `wandb sync`)")


def wandb_hook(value: str) -> "WandbHook":
    """The hook of ``--wandb value``, checked: :class:`MissingDependencyError` without wandb,
    :class:`ConfigError` for a bad project name or, online, no login."""
    wandb = import_optional("wandb", _HINT)
    value = value or DEFAULT_PROJECT
    entity, _, project = value.rpartition("/")
    if not project or "/" in entity or _BAD_PROJECT_CHARACTERS & set(value) or len(project) > 128:
        raise ConfigError(f"--wandb {value}: not a W&B project name (PROJECT or ENTITY/PROJECT, without \\#?%:)")
    mode = _mode(wandb)
    if mode not in _LOCAL_MODES:
        _check_login(wandb)
    elif mode != "disabled":
        os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # offline: no crash reports either
    return WandbHook(wandb, project, entity or None, mode)


class WandbHook(TrackerHook):
    """Logs a training run to the W&B project ``project``: the config, metrics (queued by
    wandb), the plots as images and the run's files."""

    label = "W&B"
    key = "wandb"

    def __init__(self, wandb: Any, project: str, entity: str | None = None, mode: str = "online") -> None:
        super().__init__(f"{entity}/{project}" if entity else project)
        self.wandb = wandb
        self.project, self.entity, self.mode = project, entity, mode
        self.run: Any = None
        self.step = 0

    def open(self, run: Run, resume_id: str | None) -> str:
        config = json.loads(json.dumps(run.cfg.to_dict(), default=str))
        kwargs: dict[str, Any] = dict(project=self.project, entity=self.entity, name=run.out_dir.name,
                                      job_type="train", reinit="create_new")
        if not os.environ.get("WANDB_DIR"):
            kwargs["dir"] = str(run.out_dir)
        if resume_id:
            self.run = self.wandb.init(id=resume_id, resume="allow", **kwargs)
            self.run.config.update(config, allow_val_change=True)
        else:
            self.run = self.wandb.init(config=config, **kwargs)
        if self.mode in _LOCAL_MODES:
            self.shown = f"{self.where} ({self.mode})"
        self.run.define_metric("epoch")
        for pattern in ("val/*", "epoch/*"):
            self.run.define_metric(pattern, step_metric="epoch")
        return str(self.run.id)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.step = max(self.step, step)  # W&B drops a row logged at a step before the last one
        self.run.log(dict(metrics), step=self.step)

    def log_epoch(self, run: Run, metrics: Mapping[str, float], epoch: int) -> None:
        """The epoch's metrics with ``epoch`` (their x axis) at the step reached."""
        self.log_metrics({"epoch": epoch, **metrics}, run.state.global_iter)

    def log_files(self, run: Run, files: list[tuple[Path, str]]) -> None:
        state = run.state
        if state.best_metric is not None:
            best = {metric_key(f"best/{state.metric_name}"): float(state.best_metric), "best/epoch": state.best_epoch}
            self.run.summary.update(best)
        if state.stop_reason:  # early stopping
            self.run.summary["stop_reason"] = str(state.stop_reason)
        images = {f"plots/{path.stem}": self.wandb.Image(str(path)) for path, _ in files if path.suffix == ".png"}
        if images:
            self.run.log(images, step=self.step)
        for path, _ in files:
            self.run.save(str(path), base_path=str(run.out_dir), policy="now")
        if self.mode in ("offline", "dryrun"):
            run.logger.log(f"W&B: the run is on disk; upload it with: wandb sync {Path(self.run.dir).parent}")

    def close(self, status: str) -> None:
        self.run.finish(exit_code={"FINISHED": 0, "KILLED": 130}.get(status, 1))
