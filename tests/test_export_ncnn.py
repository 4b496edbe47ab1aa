"""ncnn export (pnnx) and the ncnn backend: float, --half and --decode files of the bundled nano run
in Detector with the .pth's detections; unsupported options and bad files are one line."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import yoloxkit
import yoloxkit.infer.ncnn_backend  # noqa: F401  (registers the ncnn backend)
from yoloxkit.errors import ExportError, InferenceError
from yoloxkit.export import ExportOptions, export_model
from yoloxkit.export.graph import export_module
from yoloxkit.export.ncnn import FP16_TAG, export_ncnn, half_weights, unconverted_operators, write_ncnn
from yoloxkit.export.verify import sample_input
from yoloxkit.weights import bundled_weights_path, load_model

SIZE = (320, 320)  # --half at 256: fp16 rounding alone moves a low-score anchor past HALF_RTOL


@pytest.fixture(scope="module")
def nano():
    return load_model("yolox-nano", bundled_weights_path())


@pytest.fixture(scope="module")
def images(coco_mini, dog_jpg):
    return [str(dog_jpg), *sorted(str(p) for p in (coco_mini / "val2017").glob("*.jpg"))[:3]]


@pytest.fixture(scope="module")
def reference(images):
    """Detections of the .pth at the export size."""
    return yoloxkit.Detector(weights=str(bundled_weights_path()), size=SIZE)(images)


def _export(nano, folder, **flags):
    options = ExportOptions(size=SIZE, names=tuple(nano.names), model_name="yolox-nano", **flags)
    return export_model(nano.model, "ncnn", folder / "nano.param", options)


@pytest.fixture(scope="module")
def exports(nano, tmp_path_factory):
    """The float file, and one with --half and --decode (two exports keep the test short)."""
    return {name: _export(nano, tmp_path_factory.mktemp(name), **flags)
            for name, flags in {"float": {}, "half": {"half": True, "decode": True}}.items()}


def _canonical(result):
    boxes, ids = np.asarray(result.boxes, np.float64).reshape(-1, 4), np.asarray(result.class_ids).reshape(-1)
    order = np.lexsort((boxes[:, 1], boxes[:, 0], ids))
    return boxes[order], ids[order]


@pytest.mark.parametrize("kind,tolerance", [("float", 1.0), ("half", 2.0)])
def test_the_export_runs_in_detector_with_the_pth_detections(exports, images, reference, kind, tolerance):
    result = exports[kind]
    folder = result.path.parent
    assert sorted(p.name for p in folder.iterdir()) == ["nano.bin", "nano.param", "nano.param.json"]
    detector = yoloxkit.Detector(weights=str(result.path))
    assert detector.network.name == "ncnn" and detector.network.fixed_size == SIZE
    found = detector(images)
    assert sum(len(r.boxes) for r in reference) >= 4  # the comparison has boxes to compare
    for ours, ref in zip(found, reference):
        (boxes, ids), (ref_boxes, ref_ids) = _canonical(ours), _canonical(ref)
        assert ids.tolist() == ref_ids.tolist()
        if len(boxes):
            assert np.abs(boxes - ref_boxes).max() <= tolerance


def test_the_export_reports_its_check_precision_and_latency(exports):
    float_result, half_result = exports["float"], exports["half"]
    assert float_result.max_abs_diff < 1e-2 and float_result.precision == "float32"
    assert half_result.precision == "float16" and half_result.max_abs_diff < 0.02 * SIZE[0]  # decoded: pixels
    assert float_result.ms > 0 and float_result.reference_ms > 0 and float_result.reference_runtime == "onnxruntime"
    assert "ms per image" in float_result.summary()
    metadata = json.loads(half_result.path.with_name("nano.param.json").read_text())
    assert metadata["precision"] == "float16" and metadata["format"] == "ncnn" and metadata["interface"] == "decoded"
    assert json.loads(float_result.path.with_name("nano.param.json").read_text())["interface"] == "raw"
    half_bin, float_bin = half_result.path.with_suffix(".bin"), float_result.path.with_suffix(".bin")
    assert half_bin.stat().st_size < 0.55 * float_bin.stat().st_size


@pytest.mark.parametrize("flags,match", [
    ({"nms": True}, "--nms"), ({"topk": 10}, "--topk"), ({"dynamic": True}, "--dynamic"), ({"batch": 2}, "--batch-size"),
])
def test_options_ncnn_does_not_hold_are_refused_before_any_work(nano, tmp_path, flags, match):
    with pytest.raises(ExportError, match=match):
        export_ncnn(nano.model, tmp_path / "out" / "nano.param", ExportOptions(size=SIZE, **flags))
    assert not (tmp_path / "out").exists()


def test_a_failed_check_leaves_nothing_behind(nano, tmp_path):
    def refuse(staged):
        assert staged.is_file() and staged.with_suffix(".bin").is_file()
        raise ExportError("AP too low")

    with pytest.raises(ExportError, match="AP too low"):
        export_ncnn(nano.model, tmp_path / "nano.param", ExportOptions(size=(64, 64)), check=refuse)
    assert list(tmp_path.iterdir()) == []


def test_the_focus_stem_unrewritten_is_refused_naming_the_operator(nano, tmp_path):
    module = export_module(nano.model, ExportOptions(size=(64, 64)))
    with pytest.raises(ExportError, match="Tensor.slice"):
        write_ncnn(module, sample_input((64, 64), 1), tmp_path / "nano.param")


def test_unconverted_operators_are_the_types_with_a_dot():
    text = "7767517\n3 3\nInput in0 0 1 in0\nTensor.slice s 1 1 in0 a\nSwish s2 1 1 a out0\n"
    assert unconverted_operators(text) == ["Tensor.slice"]


def _conv_param(count: int, outputs: int) -> str:
    return (f"7767517\n2 2\nInput in0 0 1 in0\n"
            f"Convolution c 1 1 in0 out0 0={outputs} 1=1 5=1 6={count}\n")


def test_half_weights_round_to_nearest_and_keep_subnormals():
    weights = np.array([1.0, 1e-5, -3e-7, 0.1], np.float32)  # 1e-5 and -3e-7: float16 subnormals
    bias = np.array([0.5], np.float32)
    data = struct.pack("<I", 0) + weights.tobytes() + bias.tobytes()
    out = half_weights(_conv_param(4, 1), data)
    assert struct.unpack_from("<I", out)[0] == FP16_TAG
    halves = np.frombuffer(out, np.float16, 4, 4)
    assert halves.tolist() == weights.astype(np.float16).tolist() and halves[1] != 0 and halves[2] != 0
    assert np.frombuffer(out, np.float32, 1, 12).tolist() == [0.5]  # 8 bytes of float16, then the float32 bias
    assert len(out) == 16


def test_half_weights_refuse_what_they_cannot_read():
    data = struct.pack("<I", 0) + np.ones(4, np.float32).tobytes() + np.ones(1, np.float32).tobytes()
    with pytest.raises(ExportError, match="do not fit"):
        half_weights(_conv_param(4, 1), data + b"\0\0\0\0")
    with pytest.raises(ExportError, match="do not fit"):
        half_weights(_conv_param(4, 1), data[:10])
    with pytest.raises(ExportError, match="InnerProduct"):
        half_weights("7767517\n2 2\nInput in0 0 1 in0\nInnerProduct fc 1 1 in0 out0 0=1 1=1 2=4\n", data)


BAD_FILES = textwrap.dedent('''
    import os, shutil, sys
    from pathlib import Path
    import yoloxkit
    import yoloxkit.infer.ncnn_backend
    from yoloxkit.errors import YoloxkitError

    source = Path(sys.argv[1])
    root = Path(sys.argv[2])
    param, weights = source.read_bytes(), source.with_suffix(".bin").read_bytes()
    cases = {
        "empty-param": (b"", weights), "garbage-param": (os.urandom(4000), weights),
        "truncated-param": (param[: len(param) // 2], weights), "empty-bin": (param, b""),
        "truncated-bin": (param, weights[: len(weights) // 3]), "garbage-bin": (param, os.urandom(999)),
        "missing-bin": (param, None),
    }
    for name, (param_bytes, bin_bytes) in cases.items():
        folder = root / name
        folder.mkdir()
        (folder / "nano.param").write_bytes(param_bytes)
        shutil.copy(source.with_name(source.name + ".json"), folder / "nano.param.json")
        if bin_bytes is not None:
            (folder / "nano.bin").write_bytes(bin_bytes)
        try:
            yoloxkit.Detector(weights=str(folder / "nano.param"))
        except YoloxkitError as exc:
            print(name, type(exc).__name__, str(exc).replace(chr(10), " | "), flush=True)
        else:
            print(name, "no error", flush=True)
''')


def test_corrupt_files_are_one_line_never_a_crash(exports, tmp_path):
    script = tmp_path / "bad_files.py"
    script.write_text(BAD_FILES)
    (tmp_path / "cases").mkdir()
    done = subprocess.run([sys.executable, str(script), str(exports["float"].path), str(tmp_path / "cases")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert set(lines) == {"empty-param", "garbage-param", "truncated-param", "empty-bin", "truncated-bin",
                          "garbage-bin", "missing-bin"}
    for name, said in lines.items():
        kind, message = said.split(" ", 1)
        assert kind in ("InferenceError", "WeightsError"), (name, said)
        assert "nano" in message and " | " not in message, (name, said)
    assert "nano.bin" in lines["missing-bin"] and "nano.bin" in lines["truncated-bin"]


def test_the_backend_runs_files_only_and_on_the_cpu(exports):
    from yoloxkit.infer.registry import make_backend
    from yoloxkit.weights.sidecar import sidecar_export_info

    with pytest.raises(InferenceError, match="export --format ncnn"):
        make_backend("ncnn", model=torch.nn.Identity(), size=SIZE)
    info = sidecar_export_info(exports["float"].path, "ncnn")
    with pytest.raises(InferenceError, match="(?i)cpu"):
        make_backend("ncnn", export=info, size=SIZE, device="cuda")
