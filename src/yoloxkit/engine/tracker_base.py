"""What the experiment-tracker hooks (:mod:`.tracker_mlflow`, :mod:`.tracker_wandb`) share: the
tracker run opened on the first event and closed once, with a status, however the training ends,
and the names and values they log.

A subclass implements :meth:`TrackerHook.open`, :meth:`~TrackerHook.log_metrics`,
:meth:`~TrackerHook.log_files` and :meth:`~TrackerHook.close`; the events are handled here:

- the config as parameters when the tracker run opens (``before_train``, or the first event
  after ``--resume``, which continues the tracker run named in ``OUT/experiment_trackers.json``);
- after each step ``train/<loss>`` and ``train/lr`` at step ``global_iter``;
- after each epoch the row's numbers (``epoch/<loss>``, ``epoch/time_s``, ``val/AP`` and
  ``val/<metric>``) and the per-class AP (``val/AP_<class>``) at step ``epoch``;
- at the end of the run ``best/<metric>``, ``best.pth``, the PNG plots, ``history.json`` and
  ``config.json``; then the tracker run is closed as finished.

A run that ends otherwise (Ctrl-C, an exception) is closed when the process exits (``atexit``),
as killed (after an interrupt) or failed. Opening fails with one line (:class:`TrackerError`);
a later failure (a server gone mid-run) is one warning line, and training goes on without the
tracker.
"""

from __future__ import annotations

import atexit
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

from ..errors import YoloxkitError
from ..io import atomic_write_text, read_json_mapping
from .hooks import EpochEnd, Hook, Run

__all__ = ["TrackerError", "TrackerHook", "TRACKERS_FILE", "config_params", "epoch_metrics", "metric_key", "one_line",
           "run_files"]

#: ``OUT/experiment_trackers.json``: the tracker runs of a training run, continued by ``--resume``
TRACKERS_FILE = "experiment_trackers.json"
#: the files logged at the end of a run: (name in ``OUT``, folder among the tracker's artifacts)
RUN_FILES = (("best.pth", ""), ("loss_curves.png", "plots"), ("ap_per_epoch.png", "plots"), ("history.json", ""),
             ("config.json", ""))

_UNSAFE = re.compile(r"[^\w\-./ :]")


class TrackerError(YoloxkitError):
    """An experiment tracker that cannot open its run."""


def one_line(exc: BaseException, limit: int = 240) -> str:
    """The first line of ``exc``'s message, cut after its first sentence when long."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if len(text) > limit and ". " in text[40:]:
        text = text[: text.index(". ", 40) + 1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def metric_key(name: str) -> str:
    """``name`` with the characters MLflow does not accept in a key replaced by ``_``."""
    return _UNSAFE.sub("_", name)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def config_params(options: Mapping[str, Any], limit: int = 6000, prefix: str = "") -> dict[str, str]:
    """``options`` (``TrainConfig.to_dict()``) as flat string parameters: nested mappings as
    ``outer.inner``, values as JSON (strings as they are), cut to ``limit`` characters."""
    params: dict[str, str] = {}
    for key, value in options.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            params.update(config_params(value, limit, f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        params[metric_key(name)[:250]] = text if len(text) <= limit else text[: limit - 3] + "..."
    return params


def epoch_metrics(end: EpochEnd) -> dict[str, float]:
    """An epoch's numbers: ``epoch/<key>`` for its mean losses and time, ``val/<metric>`` for its
    evaluation (``val/AP``: the primary metric, as in TensorBoard) and ``val/AP_<class>`` for each
    class with an AP in the report (AP@[.5:.95] for COCO metrics, AP@0.5 for VOC)."""
    metrics: dict[str, float] = {}
    for key, value in end.row.items():
        if key in ("epoch", "ap") or not _number(value):
            continue
        name = f"val/{key[4:]}" if key.startswith("val_") else f"epoch/{key}"
        metrics[metric_key(name)] = float(value)
    if _number(end.row.get("ap")):
        metrics.setdefault("val/AP", float(end.row["ap"]))
    per_class = (end.report or {}).get("per_class") or {}
    for name, value in per_class.items():
        if _number(value):
            metrics[metric_key(f"val/AP_{name}")] = float(value)
    return metrics


def run_files(out_dir: Path) -> list[tuple[Path, str]]:
    """The files of :data:`RUN_FILES` that ``out_dir`` holds, with their artifact folders."""
    return [(out_dir / name, folder) for name, folder in RUN_FILES if (out_dir / name).is_file()]


class TrackerHook(Hook):
    """A hook that logs the run to an experiment tracker (rank 0 only: ``tracker_hooks`` gives
    other ranks none). ``where`` names the store or project, to continue a run after ``--resume``
    only in the same one."""

    label = "tracker"  # the name in messages
    key = "tracker"  # its entry in OUT/experiment_trackers.json

    def __init__(self, where: str) -> None:
        self.where = where
        self.shown = where  # where the run goes, in the log line when it opens
        self.opened = self.closed = False
        self._interrupt: Any = None

    # -- what a tracker implements
    def open(self, run: Run, resume_id: str | None) -> str:
        """Start (or, with ``resume_id``, continue) the tracker run, log the config; its id."""
        raise NotImplementedError

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log ``metrics`` at ``step`` (cheaply: buffered or queued)."""
        raise NotImplementedError

    def log_epoch(self, run: Run, metrics: Mapping[str, float], epoch: int) -> None:
        """Log an epoch's ``metrics`` (epoch 0: the starting weights); by default at step ``epoch``."""
        self.log_metrics(metrics, epoch)

    def log_files(self, run: Run, files: list[tuple[Path, str]]) -> None:
        """Log the end-of-run ``files`` ((path, artifact folder) pairs) and the best metric."""
        raise NotImplementedError

    def close(self, status: str) -> None:
        """End the tracker run: ``status`` ``FINISHED``, ``KILLED`` or ``FAILED``."""
        raise NotImplementedError

    # -- the events
    def before_train(self, run: Run) -> None:
        if self._begin(run) and run.state.start_metric is not None:  # epoch 0: the starting weights
            self._safely(run, self.log_epoch, run, {"val/AP": float(run.state.start_metric)}, 0)

    def after_step(self, run: Run, losses: Mapping[str, float]) -> None:
        if self._begin(run):
            metrics = {metric_key(f"train/{k}"): float(v) for k, v in losses.items() if _number(v)}
            metrics["train/lr"] = float(run.current_lr)
            self._safely(run, self.log_metrics, metrics, run.state.global_iter)

    def after_epoch(self, run: Run, end: EpochEnd) -> None:
        if self._begin(run):
            self._safely(run, self.log_epoch, run, epoch_metrics(end), end.epoch)

    def after_train(self, run: Run) -> None:
        if self._begin(run) and self._safely(run, self.log_files, run, run_files(run.out_dir)):
            self._mark_closed()
            self._safely(run, self.close, "FINISHED")

    # -- the machinery
    def _begin(self, run: Run) -> bool:
        """Open the tracker run on the first event; whether it is open (and not yet closed)."""
        if self.opened:
            return not self.closed
        try:
            run_id = self.open(run, self._stored_id(run))
        except YoloxkitError:
            raise
        except Exception as exc:
            raise TrackerError(f"--{self.key}: cannot start the {self.label} run: {one_line(exc)}") from None
        self.opened = True
        self._interrupt = getattr(run, "interrupt", None)
        atexit.register(self._at_exit)
        self._store_id(run, run_id)
        run.logger.log(f"{self.label}: logging this run to {self.shown} (run {run_id})")
        return True

    def _safely(self, run: Run, action: Any, *args: Any) -> bool:
        """``action(*args)``; a failure is one warning line, and the tracker run is closed as failed."""
        try:
            action(*args)
            return True
        except Exception as exc:
            run.logger.log(f"warning: {self.label} logging failed ({one_line(exc)}); training goes on without it")
            self._end("FAILED")
            return False

    def _mark_closed(self) -> None:
        self.closed = True
        atexit.unregister(self._at_exit)

    def _end(self, status: str) -> None:
        """Close the tracker run once, quietly (a failure, or the process ending)."""
        if not self.opened or self.closed:
            return
        self._mark_closed()
        try:
            self.close(status)
        except Exception:  # nothing more can be done for it
            pass

    def _at_exit(self) -> None:
        """At exit, a tracker run the trainer did not finish (Ctrl-C, an exception): killed after
        an interrupt, else failed."""
        interrupt = self._interrupt
        stopped = interrupt is not None and (getattr(interrupt, "requested", False) or getattr(interrupt, "forced", False))
        self._end("KILLED" if stopped else "FAILED")

    def _stored_id(self, run: Run) -> str | None:
        if not run.cfg.resume:
            return None
        entry = _read_trackers(run.out_dir).get(self.key) or {}
        return entry.get("id") if entry.get("where") == self.where else None

    def _store_id(self, run: Run, run_id: str) -> None:
        data = _read_trackers(run.out_dir)
        data[self.key] = {"id": run_id, "where": self.where}
        try:
            atomic_write_text(json.dumps(data, indent=2) + "\n", run.out_dir / TRACKERS_FILE)
        except OSError as exc:
            run.logger.log(f"warning: cannot write {run.out_dir / TRACKERS_FILE} ({exc}); --resume starts a new"
                           f" {self.label} run")


def _read_trackers(out_dir: Path) -> dict[str, Any]:
    return read_json_mapping(out_dir / TRACKERS_FILE)
