"""Steering a run: early stopping (``--patience``), a time budget (``--time``, with a fake clock),
more epochs on ``--resume``, and the AdamW choice; their bad values as one line and exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from tests.train_subset import one_thread, step_config
from yoloxkit.engine import Hook, train
from yoloxkit.engine import time_budget as time_budget_module
from yoloxkit.engine.config import ConfigError, default_config
from yoloxkit.engine.optim import build_optimizer
from yoloxkit.engine.schedule import WarmupCosineSchedule
from yoloxkit.engine.stopping import stale_evaluations
from yoloxkit.engine.time_budget import SAFETY, EpochCosts, fit_epochs
from yoloxkit.weights import read_checkpoint


@pytest.fixture(scope="module")
def data(coco_mini_4):
    return coco_mini_4


class Recorder(Hook):
    """Each step's (iteration, lr) and each epoch's EMA weights."""

    def __init__(self):
        self.lrs: list[tuple[int, float]] = []
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def after_step(self, run, losses):
        self.lrs.append((run.state.global_iter - 1, run.current_lr))

    def after_epoch(self, run, end):
        self.weights[end.epoch] = {k: v.detach().clone() for k, v in run.parts.inference_model.state_dict().items()}


def _run(cfg, hooks=()):
    lines: list[str] = []
    with one_thread():
        result = train(cfg, log=lines.append, hooks=list(hooks))
    return result, lines


# ---------------------------------------------------------------- early stopping
def test_stale_evaluations_follow_the_reference_rule():
    assert stale_evaluations([]) == 0
    assert stale_evaluations([30.0]) == 0
    assert stale_evaluations([30.0, 31.0, 30.5, 30.9]) == 2  # 31 is the reference; two evaluations below it
    assert stale_evaluations([30.0, 31.0, 32.0]) == 0
    # a rise under min_delta neither counts as an improvement nor moves the reference
    assert stale_evaluations([30.0, 30.4, 30.8, 31.2], min_delta=0.5) == 1  # 30.8 improves; 31.2 is within 0.5 of it
    assert stale_evaluations([30.0, 30.4, 30.45], min_delta=0.5) == 2
    assert stale_evaluations([30.0, 29.0, 28.0, 27.0], since=2) == 2  # only evaluations from index 2 count


def test_early_stop_ends_the_run_keeps_the_best_epoch_and_refuses_a_plain_resume(data, tmp_path):
    out = tmp_path / "out"
    recorder = Recorder()
    # min_delta 100 points: no evaluation can improve, so the run stops after `patience` of them
    result, lines = _run(step_config(data, out, epochs=6, patience=2, min_delta=100.0), [recorder])
    assert result.epochs_done == 2 and not result.interrupted
    assert any(line.startswith("stopped early after epoch 2 of 6: 2 evaluations in a row") for line in lines)
    assert lines[-1].startswith("stopped early after epoch 2 of 6") and "best epoch" in lines[-1]
    state = read_checkpoint(out / "last.pth")["train_state"]
    assert state["epoch"] == 2 and state["pending_row"] is None and state["stop_reason"]
    best_epoch = state["best_epoch"]
    best = read_checkpoint(out / "best.pth")["model"]
    if best_epoch:  # the best epoch's EMA weights, exactly
        assert all(torch.equal(best[k], v) for k, v in recorder.weights[best_epoch].items())
    with pytest.raises(ConfigError, match="stopped early after epoch 2 of 6.*nothing to continue.*larger than 6"):
        _run(step_config(data, out, epochs=None, resume=True, patience=None, min_delta=None))
    # more epochs than the run had: it trains on, counting patience from the resume
    result, lines = _run(step_config(data, out, epochs=8, resume=True))
    assert result.epochs_done == 4
    assert any("early-stopped run trains on" in line for line in lines)
    assert lines[-1].startswith("stopped early after epoch 4 of 8")


# ---------------------------------------------------------------- more epochs on resume
def test_resume_with_more_epochs_follows_the_longer_schedule(data, tmp_path, capsys):
    out = tmp_path / "out"
    first = Recorder()
    result, _ = _run(step_config(data, out, epochs=3), [first])
    ipe = 2
    config = json.loads((out / "config.json").read_text())
    base = config["lr"]
    planned3 = WarmupCosineSchedule(base, ipe, 3, warmup_epochs=1, no_aug_epochs=1, min_lr_ratio=config["min_lr_ratio"])
    assert [lr for _, lr in first.lrs] == pytest.approx([planned3.lr(i) for i in range(3 * ipe)])

    with pytest.raises(ConfigError, match="--epochs 2: .* has trained 3 epochs already"):
        _run(step_config(data, out, epochs=2, resume=True))
    from yoloxkit.cli import main

    code = main(["train", "--data", str(data), "--model", "yolox-nano", "--size", "64", "--batch-size", "2", "--workers", "0",
                 "--max-iters-per-epoch", "2", "--no-progress", "--no-plots", "--out", str(out), "--resume", "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "--resume --epochs 1:" in err and "has trained 3 epochs already" in err
    _, lines = _run(step_config(data, out, epochs=None, resume=True))  # its own 3: nothing left
    assert any("all 3 epochs are done" in line for line in lines)

    second = Recorder()
    result, lines = _run(step_config(data, out, epochs=5, resume=True), [second])
    assert result.epochs_done == 5
    planned5 = WarmupCosineSchedule(base, ipe, 5, warmup_epochs=1, no_aug_epochs=1, min_lr_ratio=config["min_lr_ratio"])
    assert [i for i, _ in second.lrs] == list(range(3 * ipe, 5 * ipe))
    assert [lr for _, lr in second.lrs] == pytest.approx([planned5.lr(i) for i in range(3 * ipe, 5 * ipe)])
    assert second.lrs[-1][1] == pytest.approx(base * config["min_lr_ratio"])
    assert any(line.startswith("--resume --epochs 5: the run of 3 epochs continues as one of 5 epochs") for line in lines)
    assert any(line.startswith("epoch 4: last 2 epochs, Mosaic/MixUp off") for line in lines)  # the tail moved
    assert json.loads((out / "config.json").read_text())["epochs"] == 5


# ---------------------------------------------------------------- time budget
def test_fit_epochs_fills_the_budget_with_the_whole_schedule():
    every = lambda epoch, total: True  # noqa: E731
    costs = EpochCosts(train_s=10.0, eval_s=5.0)
    assert fit_epochs(100.0, 0.0, 0, costs, every, 1, 300) == int((1 - SAFETY) * 100 // 15)
    assert fit_epochs(100.0, 40.0, 2, costs, every, 3, 300) == 2 + int(((1 - SAFETY) * 100 - 40) // 15)
    assert fit_epochs(100.0, 0.0, 0, costs, every, 1, 4) == 4  # --epochs caps it
    assert fit_epochs(10.0, 0.0, 0, costs, every, 2, 300) == 2  # nothing fits: the shortest schedule
    tail_only = lambda epoch, total: epoch > total - 3  # noqa: E731  evaluations in the last 3 epochs only
    # E epochs cost 10 E + 3 * 30 + (E - 3) * 1 = 11 E + 87 <= 194: E = 9
    assert fit_epochs(200.0, 0.0, 0, EpochCosts(10.0, 30.0, 1.0), tail_only, 1, 300) == 9


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class StepCost(Hook):
    """Each step costs ``seconds`` on the fake clock."""

    def __init__(self, clock, seconds):
        self.clock, self.seconds = clock, seconds

    def before_step(self, run, batch):
        self.clock.now += self.seconds


def test_time_budget_fits_the_whole_schedule_with_a_fake_clock(data, tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time_budget_module, "clock", clock)
    out = tmp_path / "out"
    recorder = Recorder()
    budget_s = 170.0  # steps of 10 s, 2 per epoch: 8 epochs (160 s) fit in 97% of it
    cfg = step_config(data, out, epochs=40, time=budget_s / 3600, warmup_epochs=None, no_aug_epochs=None)
    result, lines = _run(cfg, [StepCost(clock, 10.0), recorder])
    spent = clock.now - 1000.0
    assert result.epochs_done == 8 and 0.9 * budget_s <= spent <= budget_s
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 8 and saved["no_aug_epochs"] == 2 and saved["warmup_epochs"] == 1.0  # the fine-tune's fractions of 8
    assert recorder.lrs[-1][1] == pytest.approx(saved["lr"] * saved["min_lr_ratio"])  # the lr reached its minimum
    assert any(line.startswith("epoch 6: last 3 epochs, Mosaic/MixUp off") for line in lines)  # the no-aug tail ran
    fits = [line for line in lines if line.startswith(f"--time {budget_s / 3600:g} h:")]
    assert fits and fits[-1].endswith("no-aug tail epochs 6-8") and "8 epochs: lr" in fits[-1]


# ---------------------------------------------------------------- AdamW
def test_adamw_recipe_and_parameter_groups():
    sgd = default_config("yolox-nano", batch_size=16).resolved()
    adamw = default_config("yolox-nano", batch_size=16, optimizer="adamw").resolved()
    assert (sgd.optimizer, sgd.weight_decay) == ("sgd", 5e-4)
    assert (adamw.optimizer, adamw.weight_decay) == ("adamw", 0.05)
    assert adamw.lr == pytest.approx(sgd.lr / 10)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 2, 1))
    optimizer = build_optimizer(model, 1e-3, weight_decay=0.05, name="adamw")
    assert isinstance(optimizer, torch.optim.AdamW)
    decay = {g["name"]: g["weight_decay"] for g in optimizer.param_groups}
    assert decay == {"norm": 0.0, "weights": 0.05, "biases": 0.0}


def test_adamw_run_trains_and_resumes(data, tmp_path):
    out = tmp_path / "out"
    _run(step_config(data, out, epochs=1, optimizer="adamw"))
    state = read_checkpoint(out / "last.pth")["train_state"]
    assert "exp_avg_sq" in next(iter(state["optimizer"]["state"].values()))  # AdamW's state, saved
    result, _ = _run(step_config(data, out, epochs=2, resume=True, optimizer=None))  # the run's own optimizer
    assert result.epochs_done == 2


# ---------------------------------------------------------------- bad values
@pytest.mark.parametrize("flags, message", [
    (["--patience", "0"], "--patience must be >= 1"),
    (["--time", "-1"], "--time must be a positive number of hours"),
    (["--min-delta", "-0.5"], "--min-delta must be >= 0"),
    (["--optimizer", "adam"], "invalid choice: 'adam'"),
])
def test_bad_control_values_are_one_line_and_exit_2(data, tmp_path, capsys, flags, message):
    from yoloxkit.cli import main

    code = main(["train", "--data", str(data), "--model", "yolox-nano", "--out", str(tmp_path / "o"), *flags]) \
        if flags[0] != "--optimizer" else None
    if code is None:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--data", str(data), *flags])
        code = exit_info.value.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err


def test_a_refit_lengthens_freely_and_shortens_only_near_the_end_of_the_budget():
    from yoloxkit.engine.time_budget import keep_or_change

    assert keep_or_change(34, 35, 200.0, 216.0) == 35  # more epochs fit: take them
    assert keep_or_change(35, 34, 212.0, 216.0) == 35  # projected at 98%: inside the band, keep
    assert keep_or_change(35, 34, 214.5, 216.0) == 34  # projected past 99%: shorten
    assert keep_or_change(35, 35, 230.0, 216.0) == 35
