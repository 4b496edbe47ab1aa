"""The MNN format (issue 28): float, ``--half`` and ``--decode`` exports verified in MNN and timed
against onnxruntime; the files run through ``Detector`` like the checkpoint; corrupt files are one
line and never crash the process; an accuracy check refuses a file and leaves nothing behind; a
small INT8 file is written with its recipe (MNN's INT8 is far from float: docs/deploy.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from yoloxkit import Detector
from yoloxkit.errors import ExportError, InferenceError, MissingDependencyError
from yoloxkit.export import ExportOptions, export_model
from yoloxkit.export.edge import scored_anchors
from yoloxkit.export.mnn import convert_to_mnn, run_mnn_file
from yoloxkit.infer.registry import make_backend
from yoloxkit.quantize.calibration import calibration_files, calibration_inputs
from yoloxkit.quantize import mnn_int8
from yoloxkit.quantize.mnn_int8 import MnnInt8Recipe, quantize_mnn, skipped_ops
from yoloxkit.weights import build_model_with_weights, bundled_weights_path, describe_weights
from yoloxkit.weights.sidecar import read_sidecar, sidecar_path

SIZE = (224, 224)
CONF = 0.3


@pytest.fixture(scope="module")
def nano():
    return build_model_with_weights("yolox-nano", bundled_weights_path())


def _options(nano, size=SIZE, **changes) -> ExportOptions:
    _, names, name = nano
    return ExportOptions(size=size, names=tuple(names), model_name=name, **changes)


@pytest.fixture(scope="module")
def float_export(nano, tmp_path_factory):
    path = tmp_path_factory.mktemp("float") / "yolox-nano_mnn" / "yolox-nano.mnn"
    return export_model(nano[0], "mnn", path, _options(nano))


@pytest.fixture(scope="module")
def half_export(nano, tmp_path_factory):
    return export_model(nano[0], "mnn", tmp_path_factory.mktemp("half") / "nano-fp16.mnn", _options(nano, half=True))


@pytest.fixture(scope="module")
def decoded_export(nano, tmp_path_factory):
    path = tmp_path_factory.mktemp("decoded") / "nano-decoded.mnn"
    return export_model(nano[0], "mnn", path, _options(nano, decode=True))


@pytest.fixture(scope="module")
def images(dog_jpg, coco_mini):
    return [dog_jpg, *sorted((coco_mini / "val2017").glob("*.jpg"))[:2]]


@pytest.fixture(scope="module")
def reference(images):
    """Detections of the .pth at the export size."""
    return Detector(weights=str(bundled_weights_path()), size=SIZE, conf=CONF)(images)


def _assert_same_detections(expected, actual, tol: float, margin: float = 0.0) -> None:
    """Every detection of one list scoring at least ``CONF + margin`` has one of the same class in
    the other whose box corners lie within ``tol`` pixels (and, with no margin, the same count)."""
    if not margin:
        assert sorted(expected.class_ids.tolist()) == sorted(actual.class_ids.tolist())
    for one, other in ((expected, actual), (actual, expected)):
        for box, score, cls in zip(one.boxes, one.scores, one.class_ids):
            if score < CONF + margin:
                continue
            same = other.boxes[other.class_ids == cls]
            assert len(same), f"class {cls} (score {score:.2f}) found by one file only"
            assert np.abs(same - box).max(axis=1).min() <= tol, f"class {cls}: box {box} not within {tol} px"


def test_float_export_is_verified_timed_and_complete(float_export):
    result = float_export
    assert (result.format, result.runtime, result.precision, result.reference_runtime) == (
        "mnn", "MNN", "float32", "onnxruntime")
    assert result.max_abs_diff < 5e-3
    assert result.ms > 0 and result.reference_ms > 0 and "onnxruntime" in result.summary()
    folder = result.path.parent
    assert sorted(p.name for p in folder.iterdir()) == ["yolox-nano.mnn", "yolox-nano.mnn.json"]
    entries = read_sidecar(result.path, "mnn")
    assert (entries["format"], entries["precision"], entries["interface"]) == ("mnn", "float32", "raw")
    info = describe_weights(result.path)
    assert (info.format, info.model_name, info.num_classes, info.input_size) == ("mnn", "yolox-nano", 80, SIZE)


def test_float_file_detects_what_the_pth_detects(float_export, images, reference):
    detector = Detector(weights=str(float_export.path), conf=CONF)
    assert (detector.backend, detector.size) == ("mnn", SIZE)
    assert detector.network.precision == "fp32"
    results = detector(images)
    assert sum(len(r) for r in results) >= 5
    for expected, actual in zip(reference, results):
        _assert_same_detections(expected, actual, tol=1.0)


def test_half_file_stores_fp16_weights_and_keeps_the_detections(half_export, float_export, images, reference):
    result = half_export
    assert result.precision == "float16" and "float16" in result.summary()
    assert read_sidecar(result.path, "mnn")["precision"] == "float16"
    assert result.path.stat().st_size < 0.6 * float_export.path.stat().st_size
    detector = Detector(weights=str(result.path), conf=CONF)
    assert detector.network.precision == "fp32 (fp16 weights)"
    for expected, actual in zip(reference, detector(images)):
        _assert_same_detections(expected, actual, tol=3.0, margin=0.05)


def test_decoded_file_detects_what_the_pth_detects(decoded_export, images, reference):
    assert read_sidecar(decoded_export.path, "mnn")["interface"] == "decoded"
    assert decoded_export.max_abs_diff < 0.05  # boxes in input pixels
    for expected, actual in zip(reference, Detector(weights=str(decoded_export.path), conf=CONF)(images)):
        _assert_same_detections(expected, actual, tol=1.0)


def test_the_runner_gives_the_graph_outputs(float_export):
    run = run_mnn_file(float_export.path, threads=1)
    outputs = run(np.full((1, 3, *SIZE), 114.0, np.float32))
    assert len(outputs) == 1 and outputs[0].shape == (1, sum((SIZE[0] // s) ** 2 for s in (8, 16, 32)), 85)
    assert np.isfinite(outputs[0]).all()


@pytest.mark.parametrize("change, flag", [({"nms": True}, "--nms"), ({"dynamic": True}, "--dynamic"),
                                          ({"batch": 2}, "--batch-size")])
def test_unsupported_options_are_refused_before_any_work(nano, tmp_path, change, flag):
    path = tmp_path / "out_mnn" / "nano.mnn"
    with pytest.raises(ExportError, match=flag) as info:
        export_model(nano[0], "mnn", path, _options(nano, **change))
    assert "\n" not in str(info.value) and not path.exists()


def test_a_failed_accuracy_check_leaves_nothing_behind(nano, tmp_path):
    path = tmp_path / "out_mnn" / "nano.mnn"
    seen = []

    def refuse(staged):
        seen.append((staged.is_file(), sidecar_path(staged).is_file()))
        raise ExportError("export refused: AP too low; nothing written")

    with pytest.raises(ExportError, match="refused"):
        export_model(nano[0], "mnn", path, _options(nano, (160, 160)), check=refuse)
    assert seen == [(True, True)]  # the check saw the staged file with its metadata
    assert not path.parent.exists() or not any(path.parent.iterdir())


_LOAD_EACH = """
import sys
from yoloxkit import Detector
for path in sys.argv[1:]:
    try:
        Detector(weights=path)
        print("LOADED", path)
    except Exception as exc:
        print(type(exc).__name__ + ": " + str(exc))
"""


def test_corrupt_files_are_one_line_and_never_crash_the_process(float_export, tmp_path):
    data = float_export.path.read_bytes()
    bad = {"garbage.mnn": np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes(),
           "truncated.mnn": data[: len(data) // 3], "empty.mnn": b""}
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
        shutil.copy(sidecar_path(float_export.path), sidecar_path(tmp_path / name))
    paths = [str(tmp_path / name) for name in bad]
    done = subprocess.run([sys.executable, "-c", _LOAD_EACH, *paths], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]  # no abort or segmentation fault
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3, done.stdout
    for line, name in zip(lines, bad):
        assert line.startswith("InferenceError: ") and name in line, line


def test_a_failed_conversion_is_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file" * 100)
    with pytest.raises(ExportError, match="could not convert bad.onnx") as info:
        convert_to_mnn(bad, tmp_path / "bad.mnn")
    assert "\n" not in str(info.value) and not (tmp_path / "bad.mnn").exists()


def test_a_missing_mnn_package_is_one_line_with_the_install_hint(nano, float_export, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "MNN", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "_tools", None)
    with pytest.raises(MissingDependencyError, match=r"yoloxkit\[mnn\]"):
        export_model(nano[0], "mnn", tmp_path / "x_mnn" / "x.mnn", _options(nano))
    with pytest.raises(MissingDependencyError, match=r"yoloxkit\[mnn\]"):
        Detector(weights=str(float_export.path))
    assert not (tmp_path / "x_mnn" / "x.mnn").exists()


def test_the_backend_runs_mnn_files_only(nano):
    with pytest.raises(InferenceError, match="export --format mnn"):
        make_backend("mnn", model=nano[0], size=SIZE)


def test_the_int8_recipe_checks_its_settings():
    recipe = MnnInt8Recipe()
    assert "KL" in recipe.describe() and "stem+dark2+preds+tail" in recipe.describe()
    with pytest.raises(ExportError, match="ADMM"):  # MNN's ADMM activations crash its quantiser
        MnnInt8Recipe(method="ADMM")
    with pytest.raises(ExportError, match="layer group"):
        MnnInt8Recipe(float_groups=("neck",))


def test_skipped_ops_cover_a_group_its_rasters_and_the_tail():
    names = ["/backbone/backbone/stem/conv/conv/Conv_output_0", "/backbone/backbone/dark3/dark3.0/dconv/act/Mul_output_0",
             "/head/cls_preds.0/Conv_output_0", "/head/Sigmoid_1_output_0", "output"]
    skipped = skipped_ops(names, ("stem",))
    assert names[0] in skipped and names[0] + "_raster_0" in skipped
    assert "output" in skipped and "/head/Sigmoid_1_output_0" in skipped  # the tail, always
    assert names[1] not in skipped and names[2] not in skipped


def test_scored_anchors_keep_the_rows_that_can_become_detections():
    ref = np.zeros((1, 3, 7), np.float32)
    ref[0, 1, 4:6] = 0.5  # score 0.25
    kept_ref, kept = scored_anchors([ref], [ref + 1])
    assert kept_ref[0].shape == (1, 7) and kept[0][0, 4] == 1.5
    assert scored_anchors([ref], [ref[:, :2]])[1][0].shape == (1, 2, 7)  # other shapes pass through


def test_quantize_mnn_writes_a_float_and_an_int8_file(nano, coco_mini, tmp_path):
    files = calibration_files(coco_mini / "train2017", 4)
    images, _ = calibration_inputs(files, SIZE)
    float_file, int8_file = quantize_mnn(nano[0], _options(nano), images, tmp_path, MnnInt8Recipe())
    assert read_sidecar(float_file, "mnn")["precision"] == "float32"
    entries = read_sidecar(int8_file, "mnn")
    recipe = json.loads(entries["quantization"])
    assert (entries["precision"], recipe["runtime"], recipe["method"], recipe["calibration_images"]) == (
        "int8", "mnn", "KL", 4)
    assert int8_file.stat().st_size < 0.5 * float_file.stat().st_size  # int8 weights
    outputs = run_mnn_file(int8_file, threads=1)(images[:1])
    assert outputs[0].shape[-1] == 85 and np.isfinite(outputs[0]).all()
    assert describe_weights(int8_file).export.precision == "int8"


_CRASH = "import ctypes; ctypes.string_at(0)"  # a segmentation fault


@pytest.mark.parametrize("child, message", [
    (_CRASH, r"quantiser crashed \(signal 11\)"),  # in the quantiser: no file written
    ("import sys, pathlib; pathlib.Path(sys.argv[2]).write_bytes(b'x'); " + _CRASH,
     "runtime crashes on the INT8 file at 160x160"),  # MNN 3.6.1's int8 kernels at 160x160 and below
    ("import sys, pathlib; pathlib.Path(sys.argv[2]).write_bytes(b'x'); print('INT8 RUN EMPTY')", "no output"),
])
def test_a_crashing_quantiser_or_int8_file_is_one_line_not_a_crash(tmp_path, monkeypatch, child, message):
    monkeypatch.setattr(mnn_int8, "_QUANTISER", child)
    with pytest.raises(ExportError, match=message) as info:
        mnn_int8._run_quantiser(tmp_path / "float.mnn", tmp_path / "int8.mnn", tmp_path / "q.json", (160, 160))
    assert "\n" not in str(info.value)
