"""A training run is planned once: ``TrainConfig.resolved``, ``resolve_run_dir`` and
``resolve_weights_source`` run once per ``yoloxkit train`` run (fresh and ``--resume``), and the
flags of ``yoloxkit train`` come from the fields of ``TrainConfig``."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys

import pytest

from tests.train_subset import make_subset, one_thread
from yoloxkit.cli import build_parser, main
from yoloxkit.engine import config as config_module
from yoloxkit.engine import run_dir
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.options import cli_fields
from yoloxkit.engine.plan import RunPlan, plan_run
from yoloxkit import losses, weights


def _count_calls(monkeypatch) -> collections.Counter:
    """Wrap the three resolve steps wherever a yoloxkit module holds them; returns the counts."""
    counts: collections.Counter = collections.Counter()

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(TrainConfig, "resolved", counted("resolved", TrainConfig.resolved))
    import yoloxkit.cli.train  # noqa: F401  (every module that may hold the functions is loaded)
    import yoloxkit.engine.trainer  # noqa: F401

    for name, fn in (("resolve_run_dir", run_dir.resolve_run_dir), ("resolve_weights_source", weights.resolve_weights_source)):
        wrapper = counted(name, fn)
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("yoloxkit"):
                for attr, value in list(vars(module).items()):
                    if value is fn:
                        monkeypatch.setattr(module, attr, wrapper)
    return counts


def test_a_cli_run_resolves_once_fresh_and_on_resume(coco_mini, tmp_path, monkeypatch):
    data = make_subset(coco_mini, tmp_path / "data", 2, splits=("train2017", "val2017"))
    counts = _count_calls(monkeypatch)
    args = ["train", "--data", str(data), "--model", "yolox-nano", "--size", "64", "--batch-size", "2",
            "--max-iters-per-epoch", "1", "--workers", "0", "--out", str(tmp_path / "out"), "--no-progress",
            "--no-plots", "--eval-interval", "0"]
    with one_thread():
        assert main(args + ["--epochs", "1"]) == 0
        assert dict(counts) == {"resolved": 1, "resolve_run_dir": 1, "resolve_weights_source": 1}
        counts.clear()
        assert main(args + ["--epochs", "2", "--resume"]) == 0  # resume: the weights come from last.pth
    assert dict(counts) == {"resolved": 1, "resolve_run_dir": 1}


def test_plan_is_frozen_and_taken_as_it_is(coco_mini, tmp_path):
    data = make_subset(coco_mini, tmp_path / "data", 2)
    plan = plan_run(TrainConfig(data=str(data), model="yolox-nano", weights="none", out=str(tmp_path / "o"),
                                device="cpu", no_aug=True))
    assert isinstance(plan, RunPlan) and plan_run(plan) is plan
    assert plan.weights is None and plan.cfg.recipe == "official" and plan.cfg.size == 416
    assert plan.out_dir == tmp_path / "o" and not plan.restarted
    assert plan.multiscale is False and plan.use_amp is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.restarted = True


def test_resume_of_a_run_without_last_pth_restarts_and_finds_weights(coco_mini, tmp_path):
    data = make_subset(coco_mini, tmp_path / "data", 2)
    out = tmp_path / "o"
    out.mkdir()
    (out / "config.json").write_text("{}")
    plan = plan_run(TrainConfig(data=str(data), model="yolox-nano", out=str(out), resume=True, device="cpu"))
    assert plan.restarted and not plan.cfg.resume and plan.cfg.exist_ok
    assert plan.weights is not None and plan.weights.kind == "bundled"


def _train_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]


def test_every_flag_comes_from_a_field_with_registry_choices():
    actions = {a.dest: a for a in _train_parser()._actions if a.option_strings and a.dest not in ("help", "config")}
    fields = {f.name: opt for f, opt in cli_fields(TrainConfig)}
    assert set(actions) == set(fields)
    assert actions["recipe"].choices == config_module.RECIPE_NAMES
    assert actions["pss_targets"].choices == losses.PSS_TARGETS
    assert actions["loss_normalizer"].choices == losses.NORMALIZERS
    assert actions["epochs"].type is int and actions["lr"].type is float and actions["names"].nargs == "+"
    assert "(default 64)" in actions["batch_size"].help  # the field's default, written once
    epochs_help = actions["epochs"].help  # the recipes' constants, written once
    assert f"default: {config_module.OFFICIAL_EPOCHS}," in epochs_help and f"{config_module.PSS_BRANCH_EPOCHS} with" in epochs_help
    with pytest.raises(config_module.ConfigError, match="--loss-normalizer must be one of batch, running"):
        TrainConfig(loss_normalizer="median").resolved()


def test_a_new_field_with_an_option_becomes_a_flag_and_a_yaml_key(monkeypatch):
    from yoloxkit.cli.train import add_option_flags, config_from_args
    from yoloxkit.engine.options import option

    @dataclasses.dataclass
    class Extended(TrainConfig):
        label_smoothing: float = option(0.0, "label smoothing (default {default})")

    monkeypatch.setattr(config_module, "TrainConfig", Extended)
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_option_flags(parser)
    args = parser.parse_args(["--data", "D", "--label-smoothing", "0.1"])
    assert config_from_args(args).label_smoothing == 0.1
    assert "(default 0.0)" in parser.format_help()


def test_help_texts_take_the_recipes_values_from_the_presets(monkeypatch):
    from yoloxkit.engine import recipes

    actions = {a.dest: a for a in _train_parser()._actions}
    assert "official 5, finetune 10%% of the run" in actions["warmup_epochs"].help
    assert "official 0.9998, finetune 0.98" in actions["ema_decay"].help
    assert "official 10, finetune 1;" in actions["eval_interval"].help
    # a preset changed in its one place changes the help text with it
    monkeypatch.setitem(recipes.FINETUNE_PRESET, "ema_decay", 0.95)
    monkeypatch.setitem(recipes.FINETUNE_PRESET, "warmup_epochs", 0.25)
    actions = {a.dest: a for a in _train_parser()._actions}
    assert "official 0.9998, finetune 0.95" in actions["ema_decay"].help
    assert "finetune 25%% of the run" in actions["warmup_epochs"].help
