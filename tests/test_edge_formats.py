"""The edge formats' shared pieces (issue 28): the registry entries, the metadata beside the file,
the refusals of options they do not hold, and the one-line errors for missing extras and bad
files. The runtimes themselves are tested in test_export_{ncnn,mnn,tflite}.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from yoloxkit.cli import main
from yoloxkit.errors import ExportError, WeightsError
from yoloxkit.export import ExportOptions, default_output_path, export_model
from yoloxkit.export.edge import check_edge_options, edge_entries, move_into_place
from yoloxkit.models import build_network
from yoloxkit.weights import bundled_weights_path, describe_weights
from yoloxkit.weights.formats import find_format, format_of, known_suffixes
from yoloxkit.weights.sidecar import read_sidecar, sidecar_export_info, sidecar_path, write_sidecar

EDGE = {"ncnn": ".param", "mnn": ".mnn", "tflite": ".tflite"}
BACKEND = {"ncnn": "ncnn", "mnn": "mnn", "tflite": "litert"}


@pytest.mark.parametrize("fmt", EDGE)
def test_each_edge_format_is_registered_with_its_suffix_backend_and_folder(fmt, tmp_path):
    entry = find_format(fmt)
    assert entry.edge and entry.own_folder and entry.backend == BACKEND[fmt]
    assert format_of(tmp_path / f"m{EDGE[fmt]}") is entry
    assert EDGE[fmt] in known_suffixes()
    options = ExportOptions(size=(416, 416), half=True)
    assert default_output_path("yolox-nano", fmt, options) == Path(f"yolox-nano-fp16_{fmt}/yolox-nano-fp16{EDGE[fmt]}")


def _entries(fmt: str = "mnn", **changes) -> dict[str, str]:
    model = build_network("yolox-nano", num_classes=3)
    options = ExportOptions(size=(192, 224), names=("a", "b", "c"), model_name="yolox-nano")
    return edge_entries(model.eval(), options, fmt, **changes)


def test_the_sidecar_carries_what_the_file_runs_with(tmp_path):
    model_file = tmp_path / "m.mnn"
    model_file.write_bytes(b"x")
    write_sidecar(model_file, _entries("mnn", precision="int8", quantization={"recipe": "kl"}))
    assert sidecar_path(model_file).name == "m.mnn.json"
    info = sidecar_export_info(model_file, "mnn")
    assert (info.kind, info.interface, info.num_classes, info.names) == ("mnn", "raw", 3, ["a", "b", "c"])
    assert info.input_size == info.fixed_size == (192, 224)
    assert info.precision == "int8" and info.model_name == "yolox-nano"
    assert json.loads(read_sidecar(model_file, "mnn")["quantization"]) == {"precision": "int8", "recipe": "kl"}


@pytest.mark.parametrize("content,message", [
    (None, "without its yoloxkit metadata m.tflite.json"),
    ("{not json", "is not readable yoloxkit metadata"),
    ('{"format": "tflite"}', "has no 'interface' entry"),
    ('{"format": "mnn", "interface": "raw"}', "describes a mnn file"),
    ('{"format": "tflite", "interface": "raw", "input_size": "[0, 5]"}', r"is not \[height, width\]"),
])
def test_a_missing_or_bad_sidecar_is_one_line_naming_the_file(tmp_path, content, message):
    model_file = tmp_path / "m.tflite"
    model_file.write_bytes(b"x")
    if content is not None:
        sidecar_path(model_file).write_text(content)
    with pytest.raises(WeightsError, match=message) as caught:
        describe_weights(model_file)
    assert "\n" not in str(caught.value)


def test_an_ncnn_param_without_its_bin_is_refused(tmp_path):
    param = tmp_path / "m.param"
    param.write_text("7767517\n")
    write_sidecar(param, _entries("ncnn"))
    with pytest.raises(WeightsError, match=r"needs its weights file m\.bin"):
        describe_weights(param)


def test_move_into_place_moves_the_model_its_companions_and_its_metadata(tmp_path):
    staged, target = tmp_path / "work" / "s.param", tmp_path / "out" / "t.param"
    staged.parent.mkdir()
    target.parent.mkdir()
    for path in (staged, staged.with_suffix(".bin")):
        path.write_text(path.suffix)
    write_sidecar(staged, _entries("ncnn"))
    move_into_place(staged, target, companions=(".bin",))
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.bin", "t.param", "t.param.json"]
    assert list(staged.parent.iterdir()) == []


@pytest.mark.parametrize("changes,flag", [
    ({"nms": True}, "--nms"), ({"topk": 10}, "--topk"), ({"dynamic": True}, "--dynamic"), ({"batch": 2}, "--batch-size 2"),
])
def test_what_an_edge_file_cannot_hold_is_refused(changes, flag):
    with pytest.raises(ExportError, match=f"{flag} is not offered for --format ncnn"):
        check_edge_options("ncnn", ExportOptions(**changes))


def test_half_and_a_file_check_are_for_the_edge_formats_only(tmp_path):
    model = build_network("yolox-nano")
    with pytest.raises(ExportError, match="--half is offered for the edge formats"):
        export_model(model, "onnx", tmp_path / "m.onnx", ExportOptions(half=True))
    with pytest.raises(ExportError, match="accuracy check"):
        export_model(model, "openvino", tmp_path / "m.xml", ExportOptions(), check=lambda path: None)
    assert list(tmp_path.iterdir()) == []


PTH = str(bundled_weights_path())


@pytest.mark.parametrize("args,message", [
    (["--format", "ncnn", "--nms"], "--nms is not offered for --format ncnn"),
    (["--format", "mnn", "--dynamic"], "--dynamic is not offered for --format mnn"),
    (["--format", "tflite", "--batch-size", "4"], "--batch-size 4 is not offered"),
    (["--format", "ncnn", "--int8", "--calib", "."], "--int8 is not offered for --format ncnn"),
    (["--format", "mnn", "--int8", "--calib", "."], "--int8 is not offered for --format mnn"),
    (["--format", "onnx", "--half"], "--half is offered for --format ncnn, mnn and tflite"),
    (["--format", "tflite", "--half", "--int8"], "--half and --int8 exclude each other"),
    (["--format", "mnn", "--max-ap-drop", "1"], "--max-ap-drop needs --val-data"),
    (["--format", "onnx", "--val-data", "."], "--val-data is an --int8 option"),
])
def test_bad_edge_export_options_are_one_line_and_exit_2(args, message, tmp_path, capsys):
    out = tmp_path / "out" / "m.bin"
    assert main(["export", "--weights", PTH, "--size", "160", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("fmt,module,extra", [
    ("ncnn", "pnnx", "yoloxkit[ncnn]"), ("mnn", "MNN", "yoloxkit[mnn]"), ("tflite", "litert_torch", "yoloxkit[litert-export]"),
])
def test_a_missing_converter_is_one_line_with_its_install_hint(fmt, module, extra, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    assert main(["export", "--weights", PTH, "--format", fmt, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"pip install '{extra}'" in err and len(err.splitlines()) == 1


def test_import_and_help_load_no_runtime():
    code = ("import sys, yoloxkit, yoloxkit.cli\n"
            "try:\n    yoloxkit.cli.main(['export', '--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in ('ncnn', 'pnnx', 'MNN', 'ai_edge_litert', 'litert_torch', 'ai_edge_quantizer')"
            " if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1000:]


def test_int8_without_calibration_images_is_one_line(tmp_path, capsys):
    out = tmp_path / "out" / "m.tflite"
    assert main(["export", "--weights", PTH, "--format", "tflite", "--int8", "--size", "160", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--int8 needs calibration images: give --calib DIR" in err and len(err.splitlines()) == 1
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize("fmt", EDGE)
def test_a_corrupt_edge_file_given_as_weights_is_one_line_and_exit_2(fmt, tmp_path, dog_jpg):
    """Garbage with valid metadata beside it: predict fails in one line naming the file (run in a
    child process, so that a runtime crash would fail the test instead of the test worker)."""
    model_file = tmp_path / f"m{EDGE[fmt]}"
    model_file.write_bytes(bytes(range(256)) * 40)
    if fmt == "ncnn":
        model_file.with_suffix(".bin").write_bytes(bytes(1000))
    write_sidecar(model_file, _entries(fmt))
    done = subprocess.run([sys.executable, "-m", "yoloxkit", "predict", str(dog_jpg), "--weights", str(model_file),
                           "--save-dir", str(tmp_path / "pred")], capture_output=True, text=True, timeout=300)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1, done.stderr[-2000:]
    assert model_file.name in err[0] and "Traceback" not in done.stderr
