"""TorchScript and OpenVINO exports, verified in their runtimes; CLI bad input."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from tests.parity.reference import randomize
from yoloxkit import build_model
from yoloxkit.cli import main
from yoloxkit.errors import MissingDependencyError
from yoloxkit.export import ExportOptions, export_model
from yoloxkit.export.graph import export_module
from yoloxkit.export.verify import canonical_detections, sample_input, torch_outputs

SIZE = (160, 160)


@pytest.fixture(scope="module")
def nano() -> torch.nn.Module:
    model = build_model("yolox-nano")
    randomize(model, seed=5)
    return model.eval()


def test_torchscript_export_reloads_with_the_same_outputs(nano, tmp_path):
    result = export_model(nano, "torchscript", tmp_path / "nano.torchscript", ExportOptions(size=SIZE, decode=True))
    assert result.max_abs_diff < 1e-4 and result.runtime == "TorchScript"
    loaded = torch.jit.load(str(result.path))
    images = sample_input(SIZE, 2)  # traced at batch 1; the batch dimension stays free
    with torch.no_grad():
        np.testing.assert_allclose(loaded(images).numpy(), nano(images).numpy(), atol=1e-3, rtol=1e-5)


def test_openvino_export_with_nms_runs_in_the_openvino_runtime(nano, tmp_path):
    from yoloxkit.export.openvino import compile_openvino, run_openvino

    options = ExportOptions(size=SIZE, nms=True, dynamic=True, conf=0.3, max_dets=30)
    result = export_model(nano, "openvino", tmp_path / "ir" / "nano.xml", options)
    assert result.path.is_file() and result.path.with_suffix(".bin").is_file()
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["nano.bin", "nano.xml"]
    images = sample_input(SIZE, 3)
    actual = run_openvino(compile_openvino(result.path), images.numpy())
    expected = torch_outputs(export_module(nano, options), images)
    assert (expected[0] > 0).all()
    for e, a in zip(canonical_detections(expected), canonical_detections(actual)):
        np.testing.assert_allclose(a, e, atol=1e-3)


def test_cli_rejects_bad_format_and_old_opset(capsys):
    assert main(["export", "--model", "yolox-nano", "--format", "coreml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: unsupported --format 'coreml'; choose one of: onnx, torchscript, openvino, ncnn, mnn, tflite"
    assert main(["export", "--model", "yolox-nano", "--opset", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --opset 9 is too old: the minimum is 11") and "\n" not in err


def test_cli_names_the_openvino_install_command(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert main(["export", "--model", "yolox-nano", "--format", "openvino"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install openvino" in err and "yoloxkit[openvino]" in err and "\n" not in err
    with pytest.raises(MissingDependencyError):
        from yoloxkit.optional import import_openvino

        import_openvino()
