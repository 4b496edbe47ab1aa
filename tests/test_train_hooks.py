"""Training hooks: the public interface (``from yoloxkit.engine import Hook, train``), per-step
events, checkpoint files written once per epoch, results independent of the hooks' order, and
the one no-augmentation boundary (Mosaic off and L1 on together)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.train_subset import one_thread, step_config
from yoloxkit.engine import Hook, train


@pytest.fixture(scope="module")
def data(coco_mini_4):
    return coco_mini_4


class StepCounter(Hook):
    """Counts the steps and sees each finished epoch; stops nothing."""

    def __init__(self):
        self.before = self.after = 0
        self.epochs, self.trained = [], 0

    def before_step(self, run, batch):
        self.before += 1

    def after_step(self, run, losses):
        self.after += 1
        assert "total_loss" in losses

    def after_epoch(self, run, end):
        assert end.row in run.state.history  # the row is closed before any hook runs
        self.epochs.append(end.epoch)

    def after_train(self, run):
        self.trained += 1


def test_a_user_hook_sees_every_step_and_epoch(data, tmp_path):
    counter = StepCounter()
    with one_thread():
        result = train(step_config(data, tmp_path / "out"), log=lambda m: None, hooks=[counter])
    assert counter.before == counter.after == result.iterations == 4
    assert counter.epochs == [1, 2] and counter.trained == 1


def test_a_hook_raising_keyboard_interrupt_stops_at_the_step(data, tmp_path):
    class StopAtThree(Hook):
        def after_step(self, run, losses):
            if run.state.global_iter == 3:
                raise KeyboardInterrupt

    with one_thread(), pytest.raises(KeyboardInterrupt):
        train(step_config(data, tmp_path / "out"), log=lambda m: None, hooks=[StopAtThree()])
    from yoloxkit.weights import read_checkpoint

    assert read_checkpoint(tmp_path / "out" / "last.pth")["train_state"]["global_iter"] == 3


def test_each_checkpoint_is_written_once_per_epoch(data, tmp_path, monkeypatch):
    from yoloxkit.engine import state as state_module

    writes: list[tuple[int, str]] = []
    real = state_module.save_training_checkpoint

    def counted(path, **kwargs):
        writes.append((kwargs["epoch"], path.name))
        return real(path, **kwargs)

    monkeypatch.setattr(state_module, "save_training_checkpoint", counted)
    with one_thread():
        train(step_config(data, tmp_path / "out", epochs=3), log=lambda m: None)
    best = [e for e, n in writes if n == "best.pth"]
    assert best and len(best) == len(set(best)), writes  # at most once per epoch (0: the starting weights)
    # last.pth once per epoch (before its evaluation, the epoch pending), and once more at the end
    # of the run with nothing pending (was twice per epoch)
    assert [e for e, n in writes if n == "last.pth"] == [1, 2, 3, 3], writes


def test_the_order_of_the_hooks_does_not_change_the_run(data, tmp_path):
    from yoloxkit.engine.trainer import Trainer

    runs = {}
    for order in ("forward", "reversed"):
        trainer = Trainer(step_config(data, tmp_path / order, epochs=3), log=lambda m: None)
        if order == "reversed":
            trainer.hooks.reverse()
        with one_thread():
            result = trainer.fit()
        history = json.loads((tmp_path / order / "history.json").read_text())
        runs[order] = ([{k: v for k, v in r.items() if k != "time_s"} for r in history], result.best_metric,
                       trainer.state.best_epoch, (tmp_path / order / "best.pth").is_file())
    assert runs["forward"] == runs["reversed"]


def test_entering_the_no_aug_epoch_turns_mosaic_off_and_l1_on_together():
    from yoloxkit.engine.builder import TrainComponents
    from yoloxkit.losses import YoloxLoss

    epochs: list[int] = []
    criterion = YoloxLoss()
    parts = TrainComponents(None, None, [], SimpleNamespace(set_epoch=epochs.append), 1, None, criterion,
                            None, None, None, None, None, no_aug_start_epoch=2)
    assert [parts.enter_epoch(e) for e in range(4)] == [False, False, True, False]
    assert epochs == [0, 1, 2, 3] and criterion.use_l1 is True
    # L1 on from the start (the finetune recipe): Mosaic still stops once, at the same boundary
    from_start = YoloxLoss()
    from_start.use_l1 = True
    parts = TrainComponents(None, None, [], SimpleNamespace(set_epoch=epochs.append), 1, None, from_start,
                            None, None, None, None, None, no_aug_start_epoch=2)
    assert [parts.enter_epoch(e) for e in range(4)] == [False, False, True, False] and from_start.use_l1 is True


def test_the_criterion_is_built_whole_from_the_plan(data, tmp_path):
    from yoloxkit.engine.trainer import Trainer

    trainer = Trainer(step_config(data, tmp_path / "out"), log=lambda m: None)
    with one_thread():
        trainer.setup()
    parts = trainer.parts
    assert parts.model.criterion is parts.criterion
    assert parts.criterion.normalizer == trainer.cfg.loss_normalizer == "running"  # the finetune recipe
    assert parts.criterion.pss_targets == "detector" and parts.criterion.detector_loss is True
    assert parts.criterion.use_l1 is False  # until the no-aug tail, or the domain-shift rule at epoch 0
    early = Trainer(step_config(data, tmp_path / "early", l1_from_start=True), log=lambda m: None)
    with one_thread():
        early.setup()
    assert early.parts.criterion.use_l1 is True
