"""Unreadable weights files are one line naming the file and saying what it is not, never
PyTorch's advice to turn ``weights_only`` off (issue 11, item 9)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import yoloxkit
from yoloxkit.cli import main
from yoloxkit.errors import WeightsError
from yoloxkit.weights import convert_weights, describe_weights, load_weights, read_checkpoint

# name -> (content, what the message says)
BAD_FILES = {
    "random.pth": (np.random.default_rng(0).bytes(4096), "is not a readable PyTorch checkpoint"),
    "empty.pth": (b"", "is not a PyTorch checkpoint (empty file)"),
    "text.jpg": (b"some words in a text file\nand another line\n", "is not a YOLOX checkpoint or export"),
}


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.fixture(params=sorted(BAD_FILES))
def bad_file(request, tmp_path):
    content, expected = BAD_FILES[request.param]
    path = tmp_path / request.param
    path.write_bytes(content)
    return path, expected


def _check_message(text: str, path, expected: str) -> None:
    assert "\n" not in text.strip()
    assert str(path) in text and expected in text
    assert "weights_only" not in text and "Traceback" not in text


@pytest.mark.parametrize("command", ["convert", "export", "predict", "eval"])
def test_cli_gives_one_line_naming_the_file(bad_file, command, tmp_path, capsys, dog_jpg, coco_mini):
    path, expected = bad_file
    argv = {
        "convert": ["convert", str(path), str(tmp_path / "out.pth")],
        "export": ["export", "--weights", str(path), "--out", str(tmp_path / "out.onnx")],
        "predict": ["predict", str(dog_jpg), "--weights", str(path), "--no-save"],
        "eval": ["eval", "--data", str(coco_mini), "--weights", str(path), "--no-progress"],
    }[command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ")
    _check_message(err, path, expected)
    assert not (tmp_path / "out.pth").exists() and not (tmp_path / "out.onnx").exists()


def test_python_api_raises_one_weights_error(bad_file):
    path, expected = bad_file
    calls = (
        lambda: read_checkpoint(path),
        lambda: describe_weights(path),
        lambda: load_weights(yoloxkit.build_model("yolox-nano"), path),
        lambda: yoloxkit.Detector(weights=str(path)),
        lambda: convert_weights(path, path.with_name("out.pth")),
    )
    for call in calls:
        with pytest.raises(WeightsError) as info:
            call()
        _check_message(str(info.value), path, expected)


def test_an_unsafe_pickle_is_refused_without_the_advice(tmp_path, capsys):
    path = tmp_path / "unsafe.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": _RunsCode()}, f, protocol=2)
    with pytest.raises(WeightsError) as info:
        read_checkpoint(path)
    _check_message(str(info.value), path, "is not a safe PyTorch checkpoint")
    assert "system" in str(info.value)  # names the object it refused
    assert main(["convert", str(path), str(tmp_path / "out.pth")]) == 2
    _check_message(capsys.readouterr().err, path, "is not a safe PyTorch checkpoint")
