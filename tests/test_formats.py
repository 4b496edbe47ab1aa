"""The one format registry (yoloxkit.weights.formats): recognising files, their default backend,
and the export formats, suffixes and writers export/ takes from it."""

from __future__ import annotations

import pytest
import torch

import yoloxkit
from yoloxkit.errors import ExportError
from yoloxkit.export import FORMATS, ExportOptions, default_output_path, export_model
from yoloxkit.infer.loading import choose_backend
from yoloxkit.weights import FileFormat, export_format_names, find_format, format_of, register_format
from yoloxkit.weights import formats as registry
from yoloxkit.weights.contents import read_checkpoint_file


def test_files_are_recognised_by_suffix_then_content(tmp_path):
    assert format_of(tmp_path / "m.onnx").name == "onnx"
    assert format_of(tmp_path / "m.XML").name == "openvino"
    assert format_of(tmp_path / "missing.pth").name == "checkpoint"
    traced = torch.jit.trace(torch.nn.Conv2d(3, 4, 1).eval(), torch.zeros(1, 3, 8, 8))
    archive = tmp_path / "traced.pth"  # a TorchScript archive is one whatever its suffix
    torch.jit.save(traced, str(archive))
    assert format_of(archive).name == "torchscript"
    torch.save({"model": {}}, tmp_path / "plain.pth")
    assert format_of(tmp_path / "plain.pth").name == "checkpoint"


def test_default_backends_come_from_the_registry(tmp_path):
    assert choose_backend(None, tmp_path / "m.onnx") == "onnxruntime"
    assert choose_backend(None, tmp_path / "m.xml") == "openvino"
    assert choose_backend(None, tmp_path / "m.pth") == "torch"
    assert choose_backend(None, None) == "torch"
    assert choose_backend("ONNXRuntime", tmp_path / "m.pth") == "onnxruntime"


def test_export_formats_and_paths_come_from_the_registry():
    assert FORMATS == export_format_names() == ("onnx", "torchscript", "openvino", "ncnn", "mnn", "tflite")
    assert find_format("checkpoint").writer is None and "checkpoint" not in FORMATS
    options = ExportOptions(nms=True)
    assert default_output_path("yolox-nano", "onnx", options).as_posix() == "yolox-nano-nms.onnx"
    assert default_output_path("yolox-nano", "torchscript", ExportOptions()).as_posix() == "yolox-nano.torchscript"
    assert default_output_path("m", "openvino", ExportOptions()).as_posix() == "m_openvino/m.xml"
    with pytest.raises(ExportError, match="unsupported export format 'coreml'; choose one of: onnx, torchscript"):
        export_model(yoloxkit.build_model("yolox-nano"), "coreml", None, ExportOptions())


def test_a_registered_format_is_recognised_and_exported(tmp_path, monkeypatch):
    """A new format is one entry: recognised by its suffix, run by its backend, written by the
    writer it names (here the ONNX writer under another suffix)."""
    monkeypatch.setattr(registry, "_FORMATS", dict(registry._FORMATS))
    register_format(FileFormat("onnx2", "an ONNX copy", read_checkpoint_file, suffixes=(".onnx2",),
                               backend="onnxruntime", output_suffix=".onnx2", writer="onnx:export_onnx"))
    assert format_of(tmp_path / "m.onnx2").name == "onnx2"
    assert choose_backend(None, tmp_path / "m.onnx2") == "onnxruntime"
    assert "onnx2" in export_format_names()
    options = ExportOptions(size=(64, 64), model_name="yolox-nano", simplify=False)
    result = export_model(yoloxkit.build_model("yolox-nano").eval(), "onnx2", tmp_path / "m.onnx2", options)
    assert result.path == tmp_path / "m.onnx2" and result.path.is_file()


def test_default_suffix_is_a_deprecated_alias_that_warns_once():
    import warnings

    from yoloxkit import deprecation
    from yoloxkit.export import options

    deprecation._SHOWN.discard("yoloxkit.export.options.default_suffix")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        suffixes = [options.default_suffix(f) for f in ("onnx", "torchscript", "openvino")]
    assert suffixes == [find_format(f).output_suffix for f in ("onnx", "torchscript", "openvino")]
    assert suffixes == [".onnx", ".torchscript", ".xml"]
    assert sum(issubclass(w.category, DeprecationWarning) for w in caught) == 1
