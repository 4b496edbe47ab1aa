"""Ctrl-C in the middle of an epoch, with two data-loader workers, then --resume: the same final
weights, history and validation metrics as an uninterrupted run (issue 11, item 4).

The SIGINT is sent from inside an iteration (between the optimizer step and the EMA update),
where a plain KeyboardInterrupt would leave weights that no saved counter describes."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from tests.train_subset import make_subset, one_thread, tiny_config
from yoloxkit.engine import ema as ema_module
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.trainer import Trainer
from yoloxkit.weights import read_checkpoint


def _config(data, out, **overrides) -> TrainConfig:
    return tiny_config(data, out, **{**dict(size_range=(96, 160), max_iters_per_epoch=4, workers=2, seed=5, eval_interval=1), **overrides})


def _without_time(history):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with one_thread():
        yield


def test_ctrl_c_inside_an_iteration_then_resume_matches_the_uninterrupted_run(coco_mini, tmp_path, monkeypatch):
    data = make_subset(coco_mini, tmp_path / "data", 8, splits=("train2017", "val2017"))
    Trainer(_config(data, tmp_path / "full"), log=lambda m: None).fit()

    real_update = ema_module.ModelEMA.update
    trainers: list[Trainer] = []

    def update_with_sigint(self, model):
        if trainers and trainers[0].global_iter == 5:  # epoch 2, its second iteration
            os.kill(os.getpid(), signal.SIGINT)
        return real_update(self, model)

    monkeypatch.setattr(ema_module.ModelEMA, "update", update_with_sigint)
    out = tmp_path / "interrupted"
    trainer = Trainer(_config(data, out), log=lambda m: None)
    trainers.append(trainer)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    monkeypatch.setattr(ema_module.ModelEMA, "update", real_update)
    state = read_checkpoint(out / "last.pth")["train_state"]
    assert (state["epoch"], state["iter_in_epoch"], state["global_iter"]) == (1, 2, 6)

    Trainer(_config(data, out, resume=True), log=lambda m: None).fit()
    full, resumed = read_checkpoint(tmp_path / "full" / "last.pth"), read_checkpoint(out / "last.pth")
    for key in full["model"]:
        assert torch.equal(full["model"][key], resumed["model"][key]), key
        assert torch.equal(full["train_state"]["model"][key], resumed["train_state"]["model"][key]), key
    history_full = json.loads((tmp_path / "full" / "history.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert _without_time(history) == _without_time(history_full)  # losses over the whole epoch, same AP
    assert "ap" in history[1]
