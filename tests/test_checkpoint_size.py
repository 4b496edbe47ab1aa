"""The training size and the model name travel with the checkpoint: eval, predict, export,
serve, benchmark and Detector default to them (issue 11, item 6)."""

from __future__ import annotations

import argparse
import json

import onnx
import pytest
import torch

import yoloxkit
from tests.train_subset import make_subset
from yoloxkit.cli import build_parser, main
from yoloxkit.cli.serve import build_detector
from yoloxkit.errors import WeightsError
from yoloxkit.weights import bundled_weights_path, describe_weights, read_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def trained_at_320(tmp_path_factory):
    """A checkpoint like training writes: model name, names and ``input_size`` [320, 320]."""
    bundled = read_checkpoint(bundled_weights_path())
    path = tmp_path_factory.mktemp("ckpt") / "best.pth"
    torch.save({"model": bundled["model"], "names": bundled["names"], "model_name": "yolox-nano",
                "input_size": [320, 320]}, path)
    return path


def test_describe_weights_reports_the_stored_size(trained_at_320, tmp_path):
    assert describe_weights(trained_at_320).input_size == (320, 320)
    model = yoloxkit.build_model("yolox-nano")
    saved = save_checkpoint(tmp_path / "s.pth", model, None, "yolox-nano", input_size=[256, 320])
    assert read_checkpoint(saved)["input_size"] == [256, 320]
    assert describe_weights(saved).input_size == (256, 320)
    assert describe_weights(bundled_weights_path()).input_size is None  # nothing stored


def test_a_malformed_stored_size_is_one_line(tmp_path):
    bundled = read_checkpoint(bundled_weights_path())
    path = tmp_path / "bad.pth"
    torch.save({"model": bundled["model"], "input_size": "big"}, path)
    with pytest.raises(WeightsError, match="bad.pth: its 'input_size' is not"):
        describe_weights(path)


def test_detector_defaults_to_the_stored_size(trained_at_320):
    det = yoloxkit.Detector(weights=str(trained_at_320))
    assert det.size == (320, 320) and det.model_name == "yolox-nano"
    assert det.describe().startswith(f"model yolox-nano, input 320x320, weights {trained_at_320}")
    assert yoloxkit.Detector(weights=str(trained_at_320), size=416).size == (416, 416)  # --size wins


def test_export_without_model_or_size_uses_the_checkpoint(trained_at_320, tmp_path, capsys):
    out = tmp_path / "best.onnx"
    assert main(["export", "--weights", str(trained_at_320), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"model yolox-nano, input 320x320, weights {trained_at_320}" in printed
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 320, 320]
    assert describe_weights(out).input_size == (320, 320)  # the export records its size
    assert main(["export", "--weights", str(trained_at_320), "--size", "256", "--out", str(out)]) == 0
    assert describe_weights(out).input_size == (256, 256)


def test_eval_runs_at_the_stored_size(trained_at_320, coco_mini, tmp_path, capsys):
    data = make_subset(coco_mini, tmp_path / "coco", 2, split="val2017", splits=("val2017",))
    assert main(["eval", "--data", str(data), "--weights", str(trained_at_320), "--no-progress"]) == 0
    assert "model yolox-nano, input 320x320" in capsys.readouterr().out


def test_predict_runs_at_the_stored_size(trained_at_320, dog_jpg, tmp_path):
    out = tmp_path / "dets.json"
    assert main(["predict", str(dog_jpg), "--weights", str(trained_at_320), "--no-save", "--json-out", str(out)]) == 0
    boxes = [d["box"] for d in json.loads(out.read_text())[0]["detections"]]
    at_320 = yoloxkit.Detector(weights=str(trained_at_320), size=320)(str(dog_jpg))[0]
    at_416 = yoloxkit.Detector(weights=str(trained_at_320), size=416)(str(dog_jpg))[0]
    assert len(at_320) != len(at_416) or (abs(at_320.boxes - at_416.boxes).max() > 1)  # the size shows
    assert len(boxes) == len(at_320)
    assert abs(torch.tensor(boxes) - torch.from_numpy(at_320.boxes)).max() < 0.01  # JSON keeps 2 decimals


def test_serve_and_benchmark_use_the_stored_size(trained_at_320, capsys):
    args = build_parser().parse_args(["serve", "--weights", str(trained_at_320)])
    assert isinstance(args, argparse.Namespace)
    assert build_detector(args).size == (320, 320)
    assert main(["benchmark", "--weights", str(trained_at_320), "--backend", "torch", "--iters", "1",
                 "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "model yolox-nano, input 320x320" in out
    assert any(line.startswith("| yolox-nano | 320 |") for line in out.splitlines())
