"""``yoloxkit train`` end to end on a few coco-mini images, and its one-line errors."""

from __future__ import annotations

import json

import pytest

from tests.train_subset import make_subset, one_thread
from yoloxkit.cli import main


@pytest.fixture(scope="module")
def tiny_run(coco_mini, tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cli")
    data = make_subset(coco_mini, root / "data", 4, splits=("train2017", "val2017"))
    config = root / "train.yaml"
    # at 128 the COCO images score below nano's COCO AP, so the domain-shift rule would start L1 at
    # epoch 0: switched off, to see the official boundary
    config.write_text("epochs: 2\nno_aug_epochs: 0\nwarmup_epochs: 1\nmultiscale: false\nl1_from_start: false\n")
    out = root / "out"
    with one_thread():
        code = main([
            "train", "--data", str(data), "--model", "yolox-nano", "--config", str(config), "--batch-size", "4",
            "--size", "128", "--workers", "0", "--eval-interval", "1", "--out", str(out), "--visualize-assign",
            "--no-progress", "--seed", "1",
        ])
    return code, out


def test_train_writes_checkpoints_logs_and_plots(tiny_run):
    from yoloxkit.weights import read_checkpoint

    code, out = tiny_run
    assert code == 0
    best, last = read_checkpoint(out / "best.pth"), read_checkpoint(out / "last.pth")
    assert best["model_name"] == last["model_name"] == "yolox-nano" and len(last["names"]) == 80
    assert "train_state" in last and "train_state" not in best
    assert last["train_state"]["epoch"] == 2
    config = json.loads((out / "config.json").read_text())
    assert (config["epochs"], config["no_aug_epochs"], config["size"], config["multiscale"]) == (2, 0, 128, False)
    assert config["recipe"] == "finetune" and config["weights"] is None  # the bundled COCO weights by default
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert all("ap" in row and "total_loss" in row for row in history)
    # as in the official trainer, Mosaic stops (and L1 starts) no_aug_epochs + 1 epochs before the end
    assert history[1]["l1_loss"] > 0 == history[0]["l1_loss"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("loss_curves.png", "ap_per_epoch.png", "assign/start_0.png", "assign/end_0.png"):
        assert (out / name).stat().st_size > 1000, name
    assert not list(out.rglob(".*.pth*"))  # no temp files left behind


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train"], "--data is required"),
        (["train", "--data", "nowhere/at/all"], "nowhere"),
        (["train", "--data", "DATA", "--size", "300"], "--size"),
        (["train", "--data", "DATA", "--config", "missing.yaml"], "missing.yaml"),
        (["train", "--data", "DATA", "--model", "yolox-huge"], "yolox-huge"),
        (["train", "--data", "DATA", "--weights", "no.pth", "--epochs", "1"], "no.pth"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, coco_mini, tmp_path, capsys):
    data = make_subset(coco_mini, tmp_path / "data", 2)
    argv = [str(data) if a == "DATA" else a for a in argv] + ["--out", str(tmp_path / "out"), "--eval-interval", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err


def test_config_file_end_to_end_options_are_not_overridden_by_flag_defaults(tmp_path):
    from yoloxkit.cli import build_parser
    from yoloxkit.cli.train import config_from_args

    config = tmp_path / "e2e.yaml"
    config.write_text("model: yolox-nano-e2e\nfreeze_detector: true\npss_targets: gt\n")
    args = build_parser().parse_args(["train", "--data", "DATA", "--config", str(config)])
    cfg = config_from_args(args)
    assert cfg.freeze_detector is True and cfg.pss_targets == "gt"
    args = build_parser().parse_args(["train", "--data", "DATA", "--config", str(config), "--pss-targets", "detector"])
    assert config_from_args(args).pss_targets == "detector"
    plain = config_from_args(build_parser().parse_args(["train", "--data", "DATA"]))
    assert plain.freeze_detector is False and plain.pss_targets == "detector"


def test_ema_is_off_by_default_only_when_the_detector_is_frozen():
    from yoloxkit.cli import build_parser
    from yoloxkit.cli.train import config_from_args

    def resolved(*flags):
        args = build_parser().parse_args(["train", "--data", "DATA", "--model", "yolox-nano-e2e", *flags])
        return config_from_args(args).resolved()

    assert resolved().ema is True
    assert resolved("--freeze-detector").ema is False
    assert resolved("--freeze-detector", "--ema").ema is True
    assert resolved("--no-ema").ema is False
