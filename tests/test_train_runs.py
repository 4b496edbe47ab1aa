"""A training run's folder and its outputs (issue 11): numbered default folders, never two runs in
one folder, no stray temporary files, last.pth written before evaluating, the checkpoint's input
size, the results table, whole-epoch plot axes, workers fitted to the machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.train_subset import make_subset, one_thread, tiny_config
from yoloxkit.cli import main
from yoloxkit.engine import loader_workers
from yoloxkit.engine.config import ConfigError, TrainConfig
from yoloxkit.engine.run_dir import clear_run, remove_stale_temporaries, resolve_run_dir
from yoloxkit.engine.trainer import Trainer
from yoloxkit.weights import read_checkpoint


def _config(data, out, **overrides) -> TrainConfig:
    return tiny_config(data, out, **{**dict(multiscale=False, max_iters_per_epoch=3, workers=0, seed=3, eval_interval=1), **overrides})


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def data(coco_mini, tmp_path_factory):
    return make_subset(coco_mini, tmp_path_factory.mktemp("runs") / "data", 4, splits=("train2017", "val2017"))


def _same_weights(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ item 2: the run folder
def test_default_runs_are_numbered(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logs: list[str] = []
    for _ in range(2):
        Trainer(_config(data, None, epochs=1, eval_interval=0), log=logs.append).fit()
    assert (tmp_path / "runs/train/last.pth").is_file() and (tmp_path / "runs/train2/last.pth").is_file()
    assert any("output folder: runs/train2" in line for line in logs)
    # --resume without --out continues the newest run
    assert resolve_run_dir(None, resume=True) == tmp_path.joinpath("runs/train2").relative_to(tmp_path)


def test_explicit_out_holding_a_run_is_refused_with_one_line(data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "history.json").write_text("[]")
    code = main(["train", "--data", str(data), "--model", "yolox-nano", "--out", str(out), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--resume" in err and "--exist-ok" in err and str(out) in err


def test_exist_ok_starts_over_without_mixing_runs(data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("best.pth", "loss_curves.png", "history.json"):
        (out / name).write_bytes(b"old run")
    (out / "tensorboard").mkdir()
    (out / "notes.txt").write_text("mine")
    logs: list[str] = []
    Trainer(_config(data, out, epochs=1, eval_interval=0, exist_ok=True), log=logs.append).fit()
    assert not (out / "best.pth").exists() and not (out / "loss_curves.png").exists()  # no evaluation: no best
    assert not (out / "tensorboard").exists()
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are removed
    assert json.loads((out / "history.json").read_text())[0]["epoch"] == 1
    assert any("--exist-ok: removed" in line and "best.pth" in line for line in logs)


def test_clear_run_and_resolve_are_pure_file_operations(tmp_path):
    with pytest.raises(ConfigError, match="is a file"):
        (tmp_path / "f").write_text("x")
        resolve_run_dir(str(tmp_path / "f"))
    with pytest.raises(ConfigError, match="last.pth"):
        resolve_run_dir(str(tmp_path / "empty"), resume=True)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "last.pth").write_bytes(b"")
    assert clear_run(tmp_path / "r") == ["last.pth"]


# ------------------------------------------------------------------ item 3: temporary files, state
def test_stale_temporaries_are_removed_and_summary_names_only_existing_files(data, tmp_path):
    out = tmp_path / "out"
    logs: list[str] = []
    Trainer(_config(data, out, epochs=1), log=logs.append).fit()
    # a SIGKILL while best.pth was written leaves a 0-byte temporary; the file itself is lost
    (out / ".best.pth.k3j2h1x0.pth").write_bytes(b"")
    (out / ".history.json.ab12cd34.json").write_bytes(b"")
    (out / "best.pth").unlink()
    logs.clear()
    result = Trainer(_config(data, out, epochs=1, resume=True), log=logs.append).fit()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert any("removed 2 temporary files" in line for line in logs)
    assert result.best is None
    assert any("best.pth" in line and "missing" in line for line in logs)
    done = [line for line in logs if line.startswith("done:")][0]
    assert "best" not in done
    table = (out / "results.txt").read_text()
    assert str(out / "best.pth") not in table and str(out / "last.pth") in table
    assert not any("best.pth holds them" in line for line in logs)


def test_remove_stale_temporaries_leaves_other_hidden_files(tmp_path):
    (tmp_path / ".last.pth.abcdefgh.pth").write_bytes(b"")
    (tmp_path / ".gitignore").write_text("*")
    (tmp_path / ".notes.txt.abcdefgh.txt").write_text("not ours")
    assert remove_stale_temporaries(tmp_path) == [".last.pth.abcdefgh.pth"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", ".notes.txt.abcdefgh.txt"]


# ------------------------------------------------------------------ item 1: last.pth before evaluating
def test_a_crash_during_evaluation_keeps_the_epoch_and_resume_finishes_it(data, tmp_path, monkeypatch):
    from yoloxkit.engine import hooks

    full = tmp_path / "full"
    Trainer(_config(data, full), log=lambda m: None).fit()

    out = tmp_path / "crash"
    real = hooks.evaluate_split
    calls = {"n": 0}

    def dies_in_second_evaluation(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 0 (the starting weights), epoch 1, then epoch 2
            raise RuntimeError("killed during evaluation")
        return real(*args, **kwargs)

    monkeypatch.setattr(hooks, "evaluate_split", dies_in_second_evaluation)
    with pytest.raises(RuntimeError):
        Trainer(_config(data, out), log=lambda m: None).fit()
    state = read_checkpoint(out / "last.pth")["train_state"]
    assert state["epoch"] == 2 and state["pending_row"]["epoch"] == 2  # the epoch just trained is kept
    monkeypatch.setattr(hooks, "evaluate_split", real)
    Trainer(_config(data, out, resume=True), log=lambda m: None).fit()
    a, b = read_checkpoint(full / "last.pth"), read_checkpoint(out / "last.pth")
    assert _same_weights(a["model"], b["model"])
    history_full = json.loads((full / "history.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert [r["ap"] for r in history] == [r["ap"] for r in history_full]
    assert b["train_state"]["pending_row"] is None


# ------------------------------------------------------------------ items 5 and 6
def test_results_table_and_checkpoint_input_size(data, tmp_path):
    out = tmp_path / "out"
    logs: list[str] = []
    Trainer(_config(data, out, plots=True), log=logs.append).fit()
    for name in ("last.pth", "best.pth"):
        ckpt = read_checkpoint(out / name)
        assert ckpt["input_size"] == [128, 128] and ckpt["model_name"] == "yolox-nano"
        # where `export --int8` finds its default calibration images
        assert ckpt["train_data"] == {"data": str(Path(data).resolve()), "split": None}
    text = (out / "results.txt").read_text()
    assert text.strip() in "\n".join(logs)
    assert "best: " in text and "class" in text and "person" in text  # per-class metrics of the best epoch
    for line in text.splitlines():
        if line.startswith("  ") and str(out) in line and "yoloxkit" not in line:
            assert (out / line.split()[0].rsplit("/", 1)[-1]).exists()
    for command in ("yoloxkit eval --weights", "yoloxkit predict", "yoloxkit export --weights"):
        assert command in text
    assert str(out / "best.pth") in text


def test_plot_axes_count_whole_epochs(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from yoloxkit.engine.plots import plot_losses, plot_metric

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    history = [{"epoch": e, "total_loss": 5.0 - e, "iou_loss": 1.0, "ap": 10.0 + e} for e in (1, 2, 3)]
    plot_losses(history, tmp_path / "l.png")
    plot_metric(history, tmp_path / "a.png")
    for fig in figures:
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks


# ------------------------------------------------------------------ item 11 and messages
def test_default_workers_fit_the_machine(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert TrainConfig(data="d", model="yolox-nano", device="cpu").resolved().workers == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    # two CPUs: CPU training loads in the main process; a GPU still gets its workers
    assert TrainConfig(data="d", model="yolox-nano", device="cpu").resolved().workers == 0
    assert loader_workers.default_workers("cuda") == 2
    assert TrainConfig(data="d", model="yolox-nano", device="cpu", workers=2).resolved().workers == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert loader_workers.default_workers() == 4
    assert loader_workers.default_workers("cpu") == 4
    assert TrainConfig(data="d", model="yolox-nano", workers=1).resolved().workers == 1


def test_train_help_shows_single_percent_signs(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "5%" in text and "%%" not in text


# ------------------------------------------------------------------ item 1: bad images in both splits
def test_unreadable_images_are_skipped_counted_and_reported(coco_mini, tmp_path):
    import shutil

    data = make_subset(coco_mini, tmp_path / "data", 4, splits=("train2017", "val2017"))
    for split in ("train2017", "val2017"):
        link = data / split
        target = link.resolve()
        link.unlink()
        link.mkdir()
        for image in json.loads((data / "annotations" / f"instances_{split}.json").read_text())["images"]:
            shutil.copy(target / image["file_name"], link / image["file_name"])
    val_images = sorted((data / "val2017").iterdir())
    val_images[0].write_bytes(val_images[0].read_bytes()[:2000])  # a truncated JPEG
    train_images = sorted((data / "train2017").iterdir())
    train_images[1].write_text("not an image")
    out = tmp_path / "out"
    logs: list[str] = []
    result = Trainer(_config(data, out, workers=2), log=logs.append).fit()
    assert result.epochs_done == 2 and (out / "last.pth").is_file()
    warned = [line for line in logs if str(val_images[0]) in line and line.startswith("warning:")]
    assert len(warned) == 1  # named once, not at every evaluation
    table = (out / "results.txt").read_text()
    assert f"skipped: 1 unreadable val image ({val_images[0]})" in table
    assert f"skipped: 1 unreadable train image ({train_images[1]})" in table
    history = json.loads((out / "history.json").read_text())
    assert all("ap" in row for row in history)
