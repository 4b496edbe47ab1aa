"""torch, onnxruntime and openvino backends give the same detections, batched or not."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import yoloxkit
from yoloxkit.errors import MissingDependencyError
from yoloxkit.export import ExportOptions, export_model
from yoloxkit.infer.backends import backend_names
from yoloxkit.weights import build_model_with_weights

SIZE = 320


@pytest.fixture(scope="module")
def images(dog_jpg, coco_mini) -> list[str]:
    val = sorted((coco_mini / "val2017").glob("*.jpg"))[:2]
    return [str(dog_jpg)] + [str(p) for p in val]


@pytest.fixture(scope="module")
def torch_results(images):
    return yoloxkit.Detector("yolox-nano", size=SIZE)(images)


@pytest.fixture(scope="module")
def nano_onnx_export(tmp_path_factory):
    model, _, _ = build_model_with_weights("yolox-nano")
    path = tmp_path_factory.mktemp("backends") / "nano.onnx"
    return export_model(model, "onnx", path, ExportOptions(size=(SIZE, SIZE), dynamic=True)).path


def _assert_same(expected, actual):
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        assert len(e) == len(a) and len(e) > 0
        np.testing.assert_array_equal(e.class_ids, a.class_ids)
        np.testing.assert_allclose(e.scores, a.scores, atol=1e-4)
        np.testing.assert_allclose(e.boxes, a.boxes, atol=0.05)


def test_openvino_is_a_registered_backend():
    assert {"torch", "onnxruntime", "openvino"} <= set(backend_names())


def test_openvino_backend_matches_torch_batched_and_single(images, torch_results):
    det = yoloxkit.Detector("yolox-nano", size=SIZE, backend="openvino")
    assert det.backend == "openvino" and det.model is None and det.names[16] == "dog"
    batched = det(images)
    _assert_same(torch_results, batched)
    _assert_same(batched[1:2], det(images[1]))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_onnx_file_runs_in_each_runtime_backend(backend, nano_onnx_export, images, torch_results):
    det = yoloxkit.Detector("yolox-nano", weights=nano_onnx_export, size=SIZE, backend=backend)
    assert det.backend == backend
    _assert_same(torch_results, det(images))


def test_openvino_missing_names_the_install_command(monkeypatch):
    from yoloxkit.infer.openvino_backend import OpenVinoBackend

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install openvino .*yoloxkit\[openvino\]"):
        OpenVinoBackend(b"not used")


def test_summarize_reports_median_p90_and_throughput():
    from yoloxkit.benchmarking import summarize

    stats = summarize([0.010, 0.020, 0.030, 0.040, 0.100], batch_size=8)
    assert stats.median_ms == pytest.approx(30.0)
    assert stats.p90_ms == pytest.approx(76.0)
    assert stats.images_per_s == pytest.approx(8 / 0.030)
    with pytest.raises(ValueError):
        summarize([], 1)


def test_benchmark_cli_prints_a_row_per_backend(capsys):
    from yoloxkit.cli import main

    argv = ["benchmark", "--random-init", "--size", "160", "--backend", "torch",
            "--batch-size", "2", "--iters", "2", "--warmup", "0"]
    assert main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| yolox-nano")]
    assert [r.split("|")[4].strip() for r in rows] == ["torch"]
    assert all(float(r.split("|")[5]) > 0 and float(r.split("|")[8]) > 0 for r in rows)
    assert main(["benchmark", "--backend", "tensorrt"]) == 2
    assert "unknown backend 'tensorrt'" in capsys.readouterr().err
