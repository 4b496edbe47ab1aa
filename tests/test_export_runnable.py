"""Every file `yoloxkit export` writes runs in Detector, predict, eval, serve and benchmark, and
its detections on dog.jpg agree with those of the .pth it came from (issue 11, item 7; the edge
formats ncnn, MNN and LiteRT: issue 28)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper

import yoloxkit
from tests.train_subset import make_subset
from yoloxkit.cli import main
from yoloxkit.errors import InferenceError, WeightsError
from yoloxkit.serve.app import create_app
from yoloxkit.weights import bundled_weights_path, describe_weights, load_weights

SIZE = 320
# (format, export flags): every kind of file `yoloxkit export` writes
EXPORTS = [
    ("onnx", ()),
    ("onnx", ("--decode",)),
    ("onnx", ("--nms",)),
    ("openvino", ()),
    ("openvino", ("--nms",)),
    ("torchscript", ()),
    ("torchscript", ("--decode",)),
    ("torchscript", ("--nms",)),
    # the edge runtimes (issue 28): the network at batch 1, NMS in yoloxkit
    ("ncnn", ()),
    ("mnn", ("--decode",)),
    ("tflite", ("--decode",)),
]
SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "torchscript": ".torchscript", "ncnn": ".param", "mnn": ".mnn",
          "tflite": ".tflite"}
DEFAULT_BACKEND = {"onnx": "onnxruntime", "openvino": "openvino", "torchscript": "torch", "ncnn": "ncnn", "mnn": "mnn",
                   "tflite": "litert"}


def _id(case) -> str:
    fmt, flags = case
    return fmt + "".join(f.replace("--", "-") for f in flags)


@pytest.fixture(scope="module")
def pth():
    return bundled_weights_path()


@pytest.fixture(scope="module")
def reference(pth, dog_jpg):
    """Detections of the .pth itself at the export size."""
    return yoloxkit.Detector(weights=str(pth), size=SIZE)(str(dog_jpg))[0]


@pytest.fixture(scope="module", params=EXPORTS, ids=_id)
def exported(request, pth, tmp_path_factory):
    fmt, flags = request.param
    out = tmp_path_factory.mktemp(_id(request.param)) / f"nano{SUFFIX[fmt]}"
    assert main(["export", "--weights", str(pth), "--format", fmt, *flags, "--size", str(SIZE),
                 "--out", str(out)]) == 0
    return fmt, flags, out


def _canonical(boxes, class_ids):
    boxes, class_ids = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(class_ids).reshape(-1)
    order = np.lexsort((boxes[:, 1], boxes[:, 0], class_ids))
    return boxes[order], class_ids[order]


def assert_agree(boxes, class_ids, reference) -> None:
    """Same classes, boxes within 1 px."""
    ours, ours_ids = _canonical(boxes, class_ids)
    ref, ref_ids = _canonical(reference.boxes, reference.class_ids)
    assert ours_ids.tolist() == ref_ids.tolist()
    assert np.abs(ours - ref).max() <= 1.0


def test_detector_runs_the_export_and_agrees_with_the_pth(exported, reference, dog_jpg):
    fmt, flags, path = exported
    det = yoloxkit.Detector(weights=str(path))
    assert det.backend == DEFAULT_BACKEND[fmt]
    assert det.size == (SIZE, SIZE)  # the size it was exported at
    assert det.model_name == "yolox-nano"
    assert det.names == reference.names  # the stored class names
    result = det(str(dog_jpg))[0]
    assert len(result) >= 3 and "dog" in [result.names[i] for i in result.class_ids]
    assert_agree(result.boxes, result.class_ids, reference)
    np.testing.assert_allclose(np.sort(result.scores), np.sort(reference.scores), atol=1e-3)


def test_the_export_records_what_it_is(exported):
    fmt, flags, path = exported
    info = describe_weights(path)
    assert (info.format, info.model_name, info.num_classes, info.input_size) == (fmt, "yolox-nano", 80, (SIZE, SIZE))
    interface = "nms" if "--nms" in flags else "decoded" if "--decode" in flags else "raw"
    assert info.export.interface == interface
    if interface == "nms":
        assert (info.export.nms_conf, info.export.nms_iou, info.export.max_dets) == (0.25, 0.45, 100)


def test_only_onnx_exports_load_into_pytorch(exported, tmp_path, capsys):
    fmt, _, path = exported
    if fmt == "onnx":  # every ONNX export (plain, --decode, --nms) imports back into PyTorch
        assert load_weights(yoloxkit.build_model("yolox-nano"), path)[16] == "dog"
        return
    with pytest.raises(WeightsError, match="holds no PyTorch weights") as info:
        load_weights(yoloxkit.build_model("yolox-nano"), path)
    assert "\n" not in str(info.value)
    assert main(["convert", str(path), str(tmp_path / "out.pth")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path.name in err and not (tmp_path / "out.pth").exists()


def test_predict_cli_runs_the_export(exported, reference, dog_jpg, tmp_path):
    _, _, path = exported
    out = tmp_path / "dets.json"
    assert main(["predict", str(dog_jpg), "--weights", str(path), "--no-save", "--json-out", str(out)]) == 0
    record = json.loads(out.read_text())[0]
    dets = record["detections"]
    assert_agree([d["box"] for d in dets], [d["class_id"] for d in dets], reference)


def test_serve_runs_the_export(exported, reference, dog_jpg):
    _, _, path = exported
    app = create_app(yoloxkit.Detector(weights=str(path)), conf=0.25, nms=0.45, max_wait_ms=1.0)
    with TestClient(app) as client:
        assert client.get("/v1/model").json()["input_size"] == [SIZE, SIZE]
        response = client.post("/v1/detect", files={"file": ("dog.jpg", dog_jpg.read_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    dets = response.json()["detections"]
    assert_agree([d["box"] for d in dets], [d["class_id"] for d in dets], reference)


def test_benchmark_cli_runs_the_export(exported, capsys):
    fmt, _, path = exported
    assert main(["benchmark", "--weights", str(path), "--iters", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert f"model yolox-nano, input {SIZE}x{SIZE}, weights {path}" in out
    rows = [line for line in out.splitlines() if line.startswith("| yolox-nano")]
    assert len(rows) == 1 and f"| {DEFAULT_BACKEND[fmt]} |" in rows[0] and f"| {SIZE} |" in rows[0]


@pytest.fixture(scope="module")
def tiny_coco(coco_mini, tmp_path_factory):
    return make_subset(coco_mini, tmp_path_factory.mktemp("coco3"), 3, split="val2017", splits=("val2017",))


@pytest.fixture(scope="module")
def reference_metrics(pth, tiny_coco, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "metrics.json"
    # The --nms exports keep conf >= 0.25 and NMS at 0.45: evaluate the .pth the same way.
    assert main(["eval", "--data", str(tiny_coco), "--weights", str(pth), "--size", str(SIZE), "--conf", "0.25",
                 "--nms", "0.45", "--no-progress", "--json-out", str(out)]) == 0
    return json.loads(out.read_text())


def test_eval_cli_runs_the_export(exported, tiny_coco, reference_metrics, tmp_path, capsys):
    _, _, path = exported
    out = tmp_path / "metrics.json"
    assert main(["eval", "--data", str(tiny_coco), "--weights", str(path), "--conf", "0.25", "--nms", "0.45",
                 "--no-progress", "--json-out", str(out)]) == 0
    assert f"input {SIZE}x{SIZE}" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert metrics["AP50"] > 10
    for key in ("AP", "AP50"):
        assert abs(metrics[key] - reference_metrics[key]) < 0.5, (key, metrics[key], reference_metrics[key])


def test_a_stricter_conf_still_filters_an_nms_export(pth, tmp_path, dog_jpg):
    path = tmp_path / "nms.onnx"
    assert main(["export", "--weights", str(pth), "--nms", "--size", str(SIZE), "--out", str(path)]) == 0
    strict = yoloxkit.Detector(weights=str(path), conf=0.6)(str(dog_jpg))[0]
    expected = yoloxkit.Detector(weights=str(pth), size=SIZE, conf=0.6)(str(dog_jpg))[0]
    assert 0 < len(strict) < len(yoloxkit.Detector(weights=str(path))(str(dog_jpg))[0])
    assert_agree(strict.boxes, strict.class_ids, expected)
    # --backend torch imports the --nms ONNX into PyTorch: the same detections again
    imported = yoloxkit.Detector(weights=str(path), backend="torch", conf=0.6)(str(dog_jpg))[0]
    assert_agree(imported.boxes, imported.class_ids, expected)


def _write_onnx_conv(path) -> None:
    """A valid ONNX file that is no YOLOX export: one 1x1 conv, [1,3,32,32] -> [1,4,32,32]."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 1, 1], np.ones(12, np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["output"], name="conv")],
        "notyolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 32, 32])],
        initializer=[weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), str(path))


def test_a_file_that_is_not_a_yolox_export_is_one_line(tmp_path, capsys):
    conv = tmp_path / "conv.onnx"
    _write_onnx_conv(conv)
    with pytest.raises(InferenceError, match="conv.onnx is not a YOLOX export") as info:
        yoloxkit.Detector(weights=str(conv))
    assert "\n" not in str(info.value)
    xml = tmp_path / "notes.xml"
    xml.write_text("<notes><note>not a network</note></notes>\n")
    with pytest.raises(WeightsError, match="notes.xml is not a readable OpenVINO IR") as info:
        yoloxkit.Detector(weights=str(xml))
    assert "\n" not in str(info.value)
    for path in (conv, xml):
        assert main(["benchmark", "--weights", str(path), "--iters", "1", "--warmup", "0"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and path.name in err and "Traceback" not in err
