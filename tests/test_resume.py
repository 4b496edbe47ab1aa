"""--resume: an interrupted run continues to exactly the weights of an uninterrupted one (CPU)."""

from __future__ import annotations

import pytest
import torch

from tests.train_subset import make_subset, one_thread, tiny_config
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.trainer import Trainer
from yoloxkit.weights import read_checkpoint


def _config(data, out, **overrides) -> TrainConfig:
    return tiny_config(data, out, **{**dict(size_range=(96, 160), max_iters_per_epoch=6, workers=0, seed=7, eval_interval=0), **overrides})


def _weights(path):
    ckpt = read_checkpoint(path)
    return ckpt["model"], ckpt["train_state"]["model"]


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class _Stop(Exception):
    pass


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def uninterrupted(coco_mini, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = make_subset(coco_mini, root / "data", 12)
    Trainer(_config(data, root / "full"), log=lambda m: None).fit()
    return data, root, _weights(root / "full" / "last.pth")


def test_ctrl_c_mid_epoch_then_resume_gives_identical_weights(uninterrupted):
    data, root, (ema_full, raw_full) = uninterrupted
    out = root / "ctrl_c"

    def interrupt(trainer):
        if trainer.global_iter == 9:  # inside epoch 2 (6 iterations per epoch), multi-scale already active
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(_config(data, out), log=lambda m: None, on_iteration_end=interrupt).fit()
    state = read_checkpoint(out / "last.pth")["train_state"]
    assert (state["epoch"], state["iter_in_epoch"], state["global_iter"]) == (1, 3, 9)
    result = Trainer(_config(data, out, resume=True), log=lambda m: None).fit()
    assert result.iterations == 12 and result.epochs_done == 2
    ema, raw = _weights(out / "last.pth")
    _assert_same(raw, raw_full)
    _assert_same(ema, ema_full)


def test_killed_run_resumes_from_last_epoch_checkpoint(uninterrupted):
    data, root, (ema_full, raw_full) = uninterrupted
    out = root / "killed"

    def crash(trainer):
        if trainer.global_iter == 8:  # dies without saving, like SIGKILL
            raise _Stop

    with pytest.raises(_Stop):
        Trainer(_config(data, out), log=lambda m: None, on_iteration_end=crash).fit()
    assert read_checkpoint(out / "last.pth")["train_state"]["global_iter"] == 6
    Trainer(_config(data, out, resume=True), log=lambda m: None).fit()
    ema, raw = _weights(out / "last.pth")
    _assert_same(raw, raw_full)
    _assert_same(ema, ema_full)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, coco_mini):
    from yoloxkit.engine.config import ConfigError

    data = make_subset(coco_mini, tmp_path / "data", 2)
    with pytest.raises(ConfigError, match="last.pth"):
        Trainer(_config(data, tmp_path / "none", resume=True), log=lambda m: None).fit()
