"""The LiteRT (.tflite) format (issue 28): export float and ``--half`` verified in LiteRT; the
files run through ``Detector`` like the checkpoint; corrupt files are one line; an accuracy check
refuses a file and leaves nothing behind; a small INT8 file keeps the main objects. (``--decode``
runs through predict, eval, serve and benchmark in test_export_runnable.py.)

Conversion takes about 15 s a file, so the float and half files are converted once each (module
fixtures) and the refusal test reuses the float conversion."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from yoloxkit import Detector
from yoloxkit.errors import ExportError, InferenceError
from yoloxkit.export import ExportOptions, export_model
from yoloxkit.infer.registry import make_backend
from yoloxkit.weights import build_model_with_weights, bundled_weights_path, describe_weights
from yoloxkit.weights.sidecar import read_sidecar, sidecar_export_info, sidecar_path

SIZE = (224, 224)
CONF = 0.3


@pytest.fixture(scope="module")
def nano():
    model, names, name = build_model_with_weights("yolox-nano", bundled_weights_path())
    return model, names, name


def _options(nano, size=SIZE, **changes) -> ExportOptions:
    _, names, name = nano
    return ExportOptions(size=size, names=tuple(names) if names else None, model_name=name, **changes)


@pytest.fixture(scope="module")
def float_export(nano, tmp_path_factory):
    path = tmp_path_factory.mktemp("float") / "yolox-nano_tflite" / "yolox-nano.tflite"
    return export_model(nano[0], "tflite", path, _options(nano))


def _reuse_float_conversion(patch: pytest.MonkeyPatch, module, float_file: Path) -> None:
    """Make ``module.convert_tflite`` copy ``float_file`` (the same graph at the same size, already
    converted) instead of converting again: a conversion takes about 15 s."""
    patch.setattr(module, "convert_tflite", lambda graph, images, target: Path(shutil.copy(float_file, target)))


@pytest.fixture(scope="module")
def half_export(nano, float_export, tmp_path_factory):
    from yoloxkit.export import tflite

    path = tmp_path_factory.mktemp("half") / "nano.tflite"
    with pytest.MonkeyPatch.context() as patch:
        _reuse_float_conversion(patch, tflite, float_export.path)
        return export_model(nano[0], "tflite", path, _options(nano, half=True))


def _detect(weights, images, size):
    detector = Detector(weights=weights, size=size, conf=CONF)
    return detector, detector(images)


def _assert_same_detections(expected, actual, tol: float) -> None:
    """Every confident detection of one list has a detection of the same class in the other whose
    box corners lie within ``tol`` pixels (a margin keeps scores near the threshold out)."""
    for one, other in ((expected, actual), (actual, expected)):
        for box, score, cls in zip(one.boxes, one.scores, one.class_ids):
            if score < CONF + 0.05:
                continue
            same = other.boxes[other.class_ids == cls]
            assert len(same), f"class {cls} (score {score:.2f}) found by one file only"
            assert np.abs(same - box).max(axis=1).min() <= tol, f"class {cls}: box {box} not within {tol} px"


def _images(dog_jpg, coco_mini):
    return [dog_jpg, *sorted((coco_mini / "val2017").glob("*.jpg"))[:3]]


def test_float_export_is_verified_timed_and_detects_as_the_checkpoint(float_export, dog_jpg, coco_mini):
    result = float_export
    assert result.format == "tflite" and result.runtime == "LiteRT" and result.precision == "float32"
    assert result.max_abs_diff < 1e-3
    assert result.ms > 0 and result.reference_ms > 0 and result.reference_runtime == "onnxruntime"
    assert "onnxruntime" in result.summary()
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["yolox-nano.tflite", "yolox-nano.tflite.json"]
    entries = read_sidecar(result.path, "tflite")
    assert (entries["format"], entries["precision"], entries["interface"]) == ("tflite", "float32", "raw")
    info = describe_weights(result.path)
    assert info.num_classes == 80 and info.input_size == SIZE
    detector, found = _detect(result.path, _images(dog_jpg, coco_mini), SIZE)
    assert detector.backend == "litert"
    _, reference = _detect(bundled_weights_path(), _images(dog_jpg, coco_mini), SIZE)
    assert {"dog", "bicycle"} <= {found[0].names[c] for c in found[0].class_ids}
    for expected, actual in zip(reference, found):
        _assert_same_detections(expected, actual, tol=1.0)


def test_half_export_stores_float16_weights_and_keeps_the_detections(half_export, float_export, dog_jpg, coco_mini):
    result = half_export
    assert result.precision == "float16" and "float16 weights" in result.summary()
    assert read_sidecar(result.path, "tflite")["precision"] == "float16"
    assert result.path.stat().st_size < 0.6 * float_export.path.stat().st_size
    _, found = _detect(result.path, _images(dog_jpg, coco_mini), SIZE)
    _, reference = _detect(float_export.path, _images(dog_jpg, coco_mini), SIZE)
    for expected, actual in zip(reference, found):
        _assert_same_detections(expected, actual, tol=4.0)


def test_a_refused_file_leaves_nothing_behind(nano, float_export, tmp_path, monkeypatch):
    """The accuracy check sees the staged file with its metadata; its refusal removes both (the
    float conversion is reused: ``convert_tflite`` is replaced by a copy)."""
    from yoloxkit.export import tflite

    monkeypatch.setattr(tflite, "convert_tflite", lambda module, images, target: shutil.copy(float_export.path, target))
    seen = []

    def refuse(staged: Path) -> None:
        seen.append((staged.is_file(), sidecar_path(staged).is_file()))
        raise ExportError("AP fell by 9.9 (max 1.0): refused")

    folder = tmp_path / "out"
    with pytest.raises(ExportError, match="refused"):
        export_model(nano[0], "tflite", folder / "m.tflite", _options(nano), check=refuse)
    assert seen == [(True, True)]
    assert not folder.exists() or not any(folder.rglob("*"))


class _CumulativeProduct(torch.nn.Module):
    """``torch.export`` traces ``cumprod``; LiteRT has no lowering for it."""

    def forward(self, images):
        return torch.cumprod(images, dim=-1)


def test_a_failed_conversion_is_one_line_quoting_the_converter(tmp_path):
    """The converting child answers with the converter's reason in one line; nothing is left in
    the folder."""
    from yoloxkit.export.tflite import convert_tflite

    with pytest.raises(ExportError) as caught:
        convert_tflite(_CumulativeProduct().eval(), torch.rand(1, 3, 8, 8), tmp_path / "m.tflite")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("litert-torch cannot convert the model to m.tflite:")
    assert "aten.cumprod" in message
    assert "training mode" not in message  # the loaded graph is marked eval: no warning to quote
    assert not any(tmp_path.iterdir())


def test_a_failure_quotes_the_last_line_the_converter_printed():
    from yoloxkit.export.tflite_convert import failure_reason

    exc = RuntimeError("Lowering not found: aten.cumprod.default\nstack trace ...")
    assert failure_reason(exc, "progress\n  error: 'tfl.cumprod' op failed  \n\n") == (
        "Lowering not found: aten.cumprod.default (it printed: error: 'tfl.cumprod' op failed)")
    assert failure_reason(exc, "") == "Lowering not found: aten.cumprod.default"


def test_the_exporting_process_never_imports_the_converter(float_export):
    """``litert-torch`` imports JAX, which makes later forks unsafe: the conversion ran in a child."""
    assert float_export.path.is_file()
    assert "litert_torch" not in sys.modules and "jax" not in sys.modules


def test_options_the_format_does_not_hold_are_refused_before_any_work(nano, tmp_path):
    for changes, flag in ((dict(nms=True), "--nms"), (dict(dynamic=True), "--dynamic"), (dict(batch=2), "--batch-size")):
        with pytest.raises(ExportError, match=flag):
            export_model(nano[0], "tflite", tmp_path / "m.tflite", _options(nano, **changes))
    assert not any(tmp_path.iterdir())


_CORRUPT = """
import sys
from yoloxkit import Detector
from yoloxkit.errors import InferenceError, WeightsError
for path in sys.argv[1:]:
    try:
        Detector(weights=path)
    except (InferenceError, WeightsError) as exc:
        print("ERR", exc)
    else:
        print("LOADED", path)
"""


def test_corrupt_truncated_and_empty_files_are_one_line_without_a_crash(float_export, tmp_path):
    data = float_export.path.read_bytes()
    rng = np.random.default_rng(0)
    files = {"garbage": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "truncated": data[: len(data) // 2],
             "empty": b""}
    paths = []
    for name, content in files.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(content)
        shutil.copy(sidecar_path(float_export.path), sidecar_path(path))
        paths.append(str(path))
    run = subprocess.run([sys.executable, "-c", _CORRUPT, *paths], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 3, run.stdout
    for line, path in zip(lines, paths):
        assert line.startswith("ERR ") and path in line, line


def test_the_backend_runs_tflite_files_only(nano):
    with pytest.raises(InferenceError, match=r"runs \.tflite files.*export --format tflite"):
        make_backend("litert", model=nano[0], size=SIZE)


def test_int8_file_keeps_float_io_and_the_main_objects(nano, float_export, coco_mini, dog_jpg, tmp_path, capfd):
    from yoloxkit.infer.litert_backend import open_interpreter
    from yoloxkit.quantize.calibration import calibration_files, calibration_inputs
    from yoloxkit.quantize import tflite_int8
    from yoloxkit.quantize.tflite_int8 import TFLITE_LAYER_GROUPS, TfliteInt8Recipe, quantize_tflite

    images, _ = calibration_inputs(calibration_files(coco_mini / "train2017", 4), SIZE)
    recipe = TfliteInt8Recipe()
    with pytest.MonkeyPatch.context() as patch:
        _reuse_float_conversion(patch, tflite_int8, float_export.path)
        float_file, int8_file = quantize_tflite(nano[0], _options(nano), images, tmp_path, recipe)
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out + err)[-2000:]  # the converter's and quantiser's chatter is captured
    assert read_sidecar(float_file, "tflite")["precision"] == "float32"
    entries = read_sidecar(int8_file, "tflite")
    assert entries["precision"] == "int8" and sidecar_export_info(int8_file, "tflite").precision == "int8"
    quantization = json.loads(entries["quantization"])
    assert quantization["recipe"] == recipe.describe() and quantization["calibration_images"] == 4
    converted = open_interpreter(float_file, 1)
    tensors = {detail["index"]: detail["name"] for detail in converted.get_tensor_details()}
    names = [tensors[op["outputs"][0]] for op in converted._get_ops_details()]
    for group, pattern in TFLITE_LAYER_GROUPS.items():  # each group names some of the converted graph's ops
        assert any(re.search(pattern, name) for name in names), group
    assert re.search(TFLITE_LAYER_GROUPS["tail"], names[-1])
    interpreter = open_interpreter(int8_file, 1)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "QUANTIZE" in ops and "DEQUANTIZE" in ops  # int8 inside, float at the edges
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    _, (found,) = _detect(int8_file, [dog_jpg], SIZE)
    _, (reference,) = _detect(float_export.path, [dog_jpg], SIZE)
    main = {reference.names[c] for c, s in zip(reference.class_ids, reference.scores) if s >= 0.5}
    assert {"dog", "bicycle"} <= main
    assert main <= {found.names[c] for c in found.class_ids}


def test_unknown_layer_groups_are_refused():
    from yoloxkit.quantize.tflite_int8 import TfliteInt8Recipe

    with pytest.raises(ExportError, match="unknown layer group 'neck'"):
        TfliteInt8Recipe(float_groups=("neck",))
