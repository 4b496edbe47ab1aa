"""``--mlflow [URI]``: the training run logged to MLflow (the ``mlflow`` extra: mlflow-skinny).

The URI: a tracking URI (``http://host:5000``, ``databricks``, ``sqlite:///mlflow.db`` with
SQLAlchemy installed, ``file:///...``) or a plain folder, a local file store; no value:
``MLFLOW_TRACKING_URI``, else the folder ``./mlruns``. The experiment is ``MLFLOW_EXPERIMENT_NAME``,
else ``yoloxkit``. Everything is checked when the trainer is made, before any training: MLflow
installed, a file store's folder writable, the store opened and the experiment found or made.

MLflow 3 refuses a file store unless ``MLFLOW_ALLOW_FILE_STORE=true`` (it recommends a database
for new stores, which mlflow-skinny cannot write without SQLAlchemy): this module sets it for a
file store, and ``MLFLOW_DISABLE_TELEMETRY=true`` before MLflow is imported, so that nothing
leaves the machine unless the URI points elsewhere; a value the user set is kept.

This hook is an ordinary :class:`~yoloxkit.engine.hooks.Hook`, written against MLflow's plain
client: a worked example of logging a run to a tracker of one's own.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from .._version import __version__
from ..optional import import_optional
from .config_checks import ConfigError
from .hooks import Run
from .tracker_base import TrackerHook, config_params, metric_key, one_line

__all__ = ["MlflowHook", "mlflow_hook", "resolve_mlflow_uri", "DEFAULT_STORE", "DEFAULT_EXPERIMENT"]

#: the store of ``--mlflow`` without a value when ``MLFLOW_TRACKING_URI`` is not set
DEFAULT_STORE = "mlruns"
DEFAULT_EXPERIMENT = "yoloxkit"
_HINT = "--mlflow needs MLflow: pip install 'yoloxkit[mlflow]'"
_FLUSH_METRICS = 1000  # MLflow's largest batch of metrics
_FLUSH_SECONDS = 30.0
_URI_NAMES = ("databricks", "databricks-uc", "uc")  # URIs with no "scheme:" part
_DATABASES = ("sqlite", "postgresql", "mysql", "mssql")


def resolve_mlflow_uri(value: str, environ: Mapping[str, str] | None = None) -> str:
    """The tracking URI of ``--mlflow value``: a URI as it is, a path as a ``file://`` URI, no
    value as ``MLFLOW_TRACKING_URI`` or else ``./mlruns``."""
    environ = os.environ if environ is None else environ
    value = value or environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE
    if value in _URI_NAMES or len(urlparse(value).scheme) > 1:  # one letter: a Windows drive
        return value
    return Path(value).expanduser().resolve().as_uri()


def _file_store_folder(uri: str) -> Path | None:
    """The local folder of a ``file:`` URI (None for any other URI)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(url2pathname(unquote(parsed.path))).expanduser().resolve()


def _check_folder(folder: Path, shown: str) -> None:
    """:class:`ConfigError` unless ``folder`` is, or can be made as, a writable folder."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file, not a folder" if existing == folder else f"cannot be made: {existing} is a file"
        raise ConfigError(f"--mlflow {shown}: the MLflow store {folder} {what}")
    try:
        handle, probe = tempfile.mkstemp(prefix=".yoloxkit-write-check-", dir=existing)
        os.close(handle)
        os.remove(probe)
    except OSError as exc:
        raise ConfigError(f"--mlflow {shown}: the MLflow store {folder} cannot be written"
                          f" ({existing}: {exc.strerror or exc})") from None


def mlflow_hook(value: str) -> "MlflowHook":
    """The hook of ``--mlflow value``, checked: :class:`MissingDependencyError` without MLflow,
    :class:`ConfigError` (one line naming the URI) when its store cannot be written or opened."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # read once, when mlflow is imported
    mlflow = import_optional("mlflow", _HINT)
    uri = resolve_mlflow_uri(value)
    shown = value or uri
    folder = _file_store_folder(uri)
    if folder is not None:
        _check_folder(folder, shown)
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        client = mlflow.MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        experiment = client.get_experiment_by_name(name)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            raise ConfigError(f"--mlflow {shown}: the experiment {name!r} is deleted (restore it, or set"
                              " MLFLOW_EXPERIMENT_NAME to another)")
        experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(name)
    except ConfigError:
        raise
    except Exception as exc:
        hint = ""
        if urlparse(uri).scheme.split("+")[0] in _DATABASES and importlib.util.find_spec("sqlalchemy") is None:
            hint = " (a database store needs the full MLflow: pip install mlflow)"
        raise ConfigError(f"--mlflow {shown}: cannot open the MLflow store: {one_line(exc)}{hint}") from None
    return MlflowHook(client, uri, experiment_id)


class MlflowHook(TrackerHook):
    """Logs a training run to the experiment ``experiment_id`` of the store ``uri`` with an
    ``mlflow.MlflowClient``: the config as parameters, metrics in batches (at most every
    ``_FLUSH_SECONDS``, and at each epoch's end), the run's files as artifacts."""

    label = "MLflow"
    key = "mlflow"

    def __init__(self, client: Any, uri: str, experiment_id: str) -> None:
        super().__init__(uri)
        self.client = client
        self.experiment_id = experiment_id
        self.run_id = ""
        self._pending: list[Any] = []
        self._flushed = time.monotonic()

    def open(self, run: Run, resume_id: str | None) -> str:
        from mlflow.entities import Param

        known: dict[str, str] = {}
        if resume_id:
            try:
                known = dict(self.client.get_run(resume_id).data.params)
                self.client.update_run(resume_id, status="RUNNING")
                self.run_id = resume_id
            except Exception:  # gone from the store: a new run
                known = {}
        if not self.run_id:
            tags = {"yoloxkit.out_dir": str(run.out_dir), "yoloxkit.version": __version__}
            created = self.client.create_run(self.experiment_id, run_name=run.out_dir.name, tags=tags)
            self.run_id = created.info.run_id
        # MLflow keeps parameters for good: after --resume only the new ones are added
        params = [Param(k, v) for k, v in config_params(run.cfg.to_dict()).items() if k not in known]
        try:
            for start in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[start : start + 100])
        except Exception:
            self.client.set_terminated(self.run_id, "FAILED")
            raise
        return self.run_id

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending.extend(Metric(key, value, now, step) for key, value in metrics.items())
        if len(self._pending) >= _FLUSH_METRICS or time.monotonic() - self._flushed > _FLUSH_SECONDS:
            self.flush()

    def log_epoch(self, run: Run, metrics: Mapping[str, float], epoch: int) -> None:
        """The epoch's metrics at step ``epoch``, sent with the steps' metrics still pending."""
        self.log_metrics(metrics, epoch)
        self.flush()

    def flush(self) -> None:
        """Send the metrics logged since the last flush."""
        pending, self._pending = self._pending, []
        self._flushed = time.monotonic()
        for start in range(0, len(pending), _FLUSH_METRICS):
            self.client.log_batch(self.run_id, metrics=pending[start : start + _FLUSH_METRICS])

    def log_files(self, run: Run, files: list[tuple[Path, str]]) -> None:
        state = run.state
        if state.best_metric is not None:
            self.log_metrics({metric_key(f"best/{state.metric_name}"): float(state.best_metric)}, int(state.best_epoch or 0))
        self.flush()
        if state.stop_reason:  # early stopping
            self.client.set_tag(self.run_id, "yoloxkit.stop_reason", str(state.stop_reason)[:5000])
        for path, folder in files:
            self.client.log_artifact(self.run_id, str(path), artifact_path=folder or None)

    def close(self, status: str) -> None:
        try:
            self.flush()
        finally:
            self.client.set_terminated(self.run_id, status)
