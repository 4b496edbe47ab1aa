"""Experiment trackers (``--mlflow``, ``--wandb``): tiny runs logged to a local MLflow store and to
W&B offline, read back; a store that cannot be written and a missing login refused before any
training, in one line; the install hint; no tracker on other ranks; an interrupted run closed
as killed and continued by ``--resume``."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.train_subset import one_thread, step_config
from yoloxkit.engine import Hook, train
from yoloxkit.engine.config import ConfigError, TrainConfig
from yoloxkit.engine.experiment_trackers import MlflowHook, WandbHook, tracker_hooks
from yoloxkit.engine.hooks import EpochEnd
from yoloxkit.engine.tracker_base import config_params, epoch_metrics
from yoloxkit.engine.tracker_mlflow import resolve_mlflow_uri
from yoloxkit.errors import MissingDependencyError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(coco_mini_4):
    return coco_mini_4


def _mlflow_run(store: Path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    experiment = client.get_experiment_by_name("yoloxkit")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, runs
    return client, runs[0]


def test_mlflow_logs_the_run_to_a_local_store(data, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    store = tmp_path / "store"
    with one_thread():
        result = train(step_config(data, tmp_path / "out", plots=True, mlflow=str(store)), log=lambda m: None)
    client, run = _mlflow_run(store)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "yolox-nano" and params["batch_size"] == "2" and params["size_range"] == "[64, 96]"
    assert float(params["lr"]) == pytest.approx(json.loads((tmp_path / "out" / "config.json").read_text())["lr"])
    losses = client.get_metric_history(run.info.run_id, "train/total_loss")
    assert sorted(m.step for m in losses) == [1, 2, 3, 4] == list(range(1, result.iterations + 1))
    assert len(client.get_metric_history(run.info.run_id, "train/lr")) == 4
    # epoch 0 (the starting weights, evaluated in the finetune recipe) and each trained epoch
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val/AP")) == [0, 1, 2]
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "epoch/total_loss")) == [1, 2]
    per_class = [k for k in run.data.metrics if k.startswith("val/AP_")]
    assert per_class and "val/AP_person" in per_class, sorted(run.data.metrics)
    assert run.data.metrics["best/AP"] == pytest.approx(result.best_metric)
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"best.pth", "history.json", "config.json"} <= files
    assert plots == {"plots/loss_curves.png", "plots/ap_per_epoch.png"}
    local = Path(client.download_artifacts(run.info.run_id, "best.pth", str(tmp_path / "down")))
    assert local.read_bytes() == (tmp_path / "out" / "best.pth").read_bytes()


class StopAtThree(Hook):
    def after_step(self, run, losses):
        if run.state.global_iter == 3:
            raise KeyboardInterrupt


def test_an_interrupted_mlflow_run_is_closed_as_killed_and_resume_continues_it(data, tmp_path, monkeypatch):
    from yoloxkit.engine import tracker_base

    at_exit: list = []  # the functions the hooks leave for the interpreter's exit
    monkeypatch.setattr(tracker_base, "atexit", SimpleNamespace(register=at_exit.append, unregister=lambda f: f in at_exit and at_exit.remove(f)))
    store, out = tmp_path / "store", tmp_path / "out"
    with one_thread(), pytest.raises(KeyboardInterrupt):
        train(step_config(data, out, mlflow=str(store)), log=lambda m: None, hooks=[StopAtThree()])
    client, run = _mlflow_run(store)
    assert run.info.status == "RUNNING" and len(at_exit) == 1
    at_exit[0]()  # what the interpreter runs at exit
    client, run = _mlflow_run(store)
    assert run.info.status == "KILLED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/total_loss")] == [1, 2, 3]
    with one_thread():
        train(step_config(data, out, mlflow=str(store), resume=True), log=lambda m: None)
    client, resumed = _mlflow_run(store)  # the same run, continued
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/total_loss")) == [1, 2, 3, 4]


def _wandb_records(path: Path) -> list:
    """The records of a ``.wandb`` file (a LevelDB-style log of protobuf ``Record`` messages:
    7-byte header, then 32 KiB blocks of chunks, each with a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2

    raw = path.read_bytes()
    assert raw[:4] == b":W&B", raw[:7]
    records, pos, block, data = [], 7, 32768, b""
    while pos + 7 <= len(raw):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if kind == 0:  # zero padding at the end of a block
            pos += block - pos % block
            continue
        data, pos = data + raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            records.append(record)
            data = b""
    return records


def test_wandb_offline_writes_the_run_to_disk(data, tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    out = tmp_path / "out"
    with one_thread():
        result = train(step_config(data, out, plots=True, wandb="yoloxkit-tests"), log=lambda m: None)
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((out / "wandb").iterdir())
    (log,) = runs[0].glob("run-*.wandb")
    records = _wandb_records(log)
    kinds = [r.WhichOneof("record_type") for r in records]
    (start,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert start.project == "yoloxkit-tests" and start.display_name == "out"
    config = {item.key: json.loads(item.value_json) for item in start.config.update}
    assert config["model"] == "yolox-nano" and config["batch_size"] == 2 and config["size_range"] == [64, 96]
    rows = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]
    assert sorted(row["_step"] for row in rows if "train/total_loss" in row) == [1, 2, 3, 4]
    assert sorted(row["epoch"] for row in rows if "val/AP" in row) == [0, 1, 2]
    assert any(k.startswith("val/AP_") for row in rows for k in row)
    summary = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
               for r in records if r.WhichOneof("record_type") == "summary" for i in r.summary.update}
    assert summary["best/AP"] == pytest.approx(result.best_metric)
    saved = {f.path for r in records if r.WhichOneof("record_type") == "files" for f in r.files.files}
    assert {"best.pth", "loss_curves.png", "ap_per_epoch.png"} <= saved
    assert (runs[0] / "files" / "best.pth").read_bytes() == (out / "best.pth").read_bytes()
    assert kinds[-1] == "exit" and records[-1].exit.exit_code == 0


def _cli(tmp_path, data, *args, env=None):
    command = [sys.executable, "-m", "yoloxkit", "train", "--data", str(data), "--model", "yolox-nano",
               "--device", "cpu", "--epochs", "1", "--size", "64", "--workers", "0", "--out", str(tmp_path / "out"), *args]
    environ = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=120)


def test_the_cli_refuses_an_mlflow_store_that_cannot_be_written(data, tmp_path):
    done = _cli(tmp_path, data, "--mlflow", "/dev/null/x")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --mlflow /dev/null/x:") and "/dev/null is a file" in lines[0]
    assert not (tmp_path / "out" / "last.pth").exists()
    # a file where the store's folder should be: refused before training, naming it
    (tmp_path / "store").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"--mlflow .*store.* is a file, not a folder"):
        tracker_hooks(TrainConfig(mlflow=str(tmp_path / "store")))


def test_the_cli_refuses_wandb_online_without_a_login(data, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    env = {"WANDB_MODE": "online", "WANDB_API_KEY": "", "NETRC": str(netrc), "WANDB_SILENT": "true",
           "WANDB_CONFIG_DIR": str(tmp_path / "config"), "WANDB_CACHE_DIR": str(tmp_path / "cache")}
    done = _cli(tmp_path, data, "--wandb", env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --wandb: not logged in to W&B"), done.stderr
    assert "WANDB_MODE=offline" in lines[0] and not (tmp_path / "out" / "last.pth").exists()


@pytest.mark.parametrize("field, extra", [("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_missing_library_gives_the_install_hint(monkeypatch, field, extra):
    monkeypatch.setitem(sys.modules, extra, None)  # import mlflow / wandb raises ImportError
    with pytest.raises(MissingDependencyError) as error:
        tracker_hooks(TrainConfig(**{field: ""}))
    message = str(error.value)
    assert f"pip install 'yoloxkit[{extra}]'" in message and "\n" not in message and f"--{field}" in message


def test_no_tracker_by_default_or_on_other_ranks(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # not even imported
    monkeypatch.setitem(sys.modules, "wandb", None)
    assert tracker_hooks(TrainConfig()) == []
    assert tracker_hooks(TrainConfig(mlflow="", wandb="project"), is_main=False) == []


def test_the_trainer_imports_no_tracker():
    code = "import sys, yoloxkit.engine.trainer; print(sorted(m for m in ('mlflow', 'wandb') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_trackers_are_hooks_of_their_own():
    assert issubclass(MlflowHook, Hook) and issubclass(WandbHook, Hook)


def test_mlflow_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_mlflow_uri("", {}) == (tmp_path / "mlruns").resolve().as_uri()  # the default: ./mlruns
    assert resolve_mlflow_uri("", {"MLFLOW_TRACKING_URI": "http://host:5000"}) == "http://host:5000"
    assert resolve_mlflow_uri("runs/store", {}) == (tmp_path / "runs" / "store").resolve().as_uri()
    assert resolve_mlflow_uri("databricks", {}) == "databricks"
    assert resolve_mlflow_uri("sqlite:///mlflow.db", {}) == "sqlite:///mlflow.db"


def test_params_and_epoch_metrics():
    params = config_params({"model": "yolox-s", "size_range": [64, 96], "lr": None, "extra": {"a": {"b": 1}},
                            "names": ["x" * 4000, "y" * 4000]})
    assert params["model"] == "yolox-s" and params["size_range"] == "[64, 96]" and params["lr"] == "null"
    assert params["extra.a.b"] == "1" and len(params["names"]) == 6000  # MLflow's longest parameter value
    row = {"epoch": 3, "time_s": 1.5, "total_loss": 2.0, "ap": 31.0, "val_AP": 31.0, "val_AP50": 50.0, "flag": True}
    report = {"per_class": {"traffic light": 12.5, "person's bag": 3.0, "toaster": None}}
    metrics = epoch_metrics(EpochEnd(3, row, 31.0, True, report))
    assert metrics == {"epoch/time_s": 1.5, "epoch/total_loss": 2.0, "val/AP": 31.0, "val/AP50": 50.0,
                       "val/AP_traffic light": 12.5, "val/AP_person_s bag": 3.0}
