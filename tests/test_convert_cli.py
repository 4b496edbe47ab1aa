"""``yoloxkit convert``: ONNX / .pth -> yoloxkit checkpoint, and its one-line errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from yoloxkit.cli import main
from yoloxkit.coco_names import COCO_NAMES
from yoloxkit.models import build_network
from yoloxkit.weights import describe_weights, load_weights

from test_onnx_import import letterboxed, raw_output


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["convert", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_onnx_round_trip(capsys, tmp_path, nano_onnx, coco_mini, dog_jpg):
    calib = sorted((coco_mini / "train2017").glob("*.jpg"))[:4]
    dst = tmp_path / "out" / "nano.pth"
    code, out, err = run_cli(capsys, nano_onnx, dst, "--calib-images", *calib)
    assert code == 0, err
    assert "yolox-nano" in out and "80 classes" in out
    raw = torch.load(dst, map_location="cpu", weights_only=True)
    assert raw["model_name"] == "yolox-nano" and raw["names"] == list(COCO_NAMES)

    model = build_network("yolox-nano")
    assert load_weights(model, dst) == list(COCO_NAMES)
    batch = letterboxed(dog_jpg)
    session = ort.InferenceSession(str(nano_onnx), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"images": batch})[0]
    assert np.abs(raw_output(model, batch) - expected).max() <= 1e-3


def test_pth_is_resaved_in_our_format(capsys, tmp_path):
    torch.manual_seed(0)
    model = build_network("yolox-nano", num_classes=3).eval()
    src = tmp_path / "official.pth"
    torch.save({"model": model.state_dict(), "start_epoch": 10}, src)  # official layout, no names
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\nbird\n")
    dst = tmp_path / "ours.pth"
    code, out, err = run_cli(capsys, src, dst, "--names", names)
    assert code == 0, err
    info = describe_weights(dst)
    assert (info.model_name, info.num_classes, info.names) == ("yolox-nano", 3, ["cat", "dog", "bird"])
    state = torch.load(dst, map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_missing_source(capsys, tmp_path):
    code, _, err = run_cli(capsys, tmp_path / "none.onnx", tmp_path / "x.pth")
    assert_one_line_error(code, err, "not found", "none.onnx")
    assert not (tmp_path / "x.pth").exists()


@pytest.mark.parametrize("name", ["garbled.onnx", "garbled.pth"])
def test_garbled_source(capsys, tmp_path, name):
    src = tmp_path / name
    src.write_bytes(b"\x00\x01 definitely not weights " * 10)
    code, _, err = run_cli(capsys, src, tmp_path / "x.pth")
    assert_one_line_error(code, err, name)
    assert not (tmp_path / "x.pth").exists()


def test_wrong_model_override(capsys, tmp_path, nano_onnx):
    code, _, err = run_cli(capsys, nano_onnx, tmp_path / "x.pth", "--model", "yolox-s")
    assert_one_line_error(code, err, "looks like yolox-nano", "--model yolox-nano")


def test_names_count_must_match(capsys, tmp_path):
    src = tmp_path / "w.pth"
    torch.save({"model": build_network("yolox-nano", num_classes=3).state_dict()}, src)
    names = tmp_path / "names.txt"
    names.write_text("only\ntwo\n")
    code, _, err = run_cli(capsys, src, tmp_path / "x.pth", "--names", names)
    assert_one_line_error(code, err, "2 class names", "3 classes")


def test_missing_calibration_folder(capsys, tmp_path, nano_onnx):
    code, _, err = run_cli(capsys, nano_onnx, tmp_path / "x.pth", "--calib-images", tmp_path / "no-such-dir")
    assert_one_line_error(code, err, "no-such-dir")


def test_unknown_model_name(capsys, tmp_path, nano_onnx):
    code, _, err = run_cli(capsys, nano_onnx, tmp_path / "x.pth", "--model", "yolox-huge")
    assert_one_line_error(code, err, "yolox-huge")


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--calib-images", "--names", "SRC", "DST"):
        assert option in out
