"""NMS-free exports of end-to-end (-e2e) models: the --topk graph (no NonMaxSuppression node) in
ONNX, OpenVINO and TorchScript, its metadata, plain onnxruntime, and Detector on every export."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import yoloxkit
from yoloxkit.cli import main
from yoloxkit.export import ExportOptions, default_output_path, options_for_model
from yoloxkit.imaging import letterbox
from yoloxkit.weights import describe_weights, load_model, save_checkpoint


@pytest.fixture(scope="module")
def e2e_checkpoint(tmp_path_factory):
    """yolox-nano-e2e, bundled weights, PSS biases high (σ(pss) ≈ 1), saved with its model name."""
    model = load_model("yolox-nano-e2e").model
    for conv in model.head.pss_preds:
        torch.nn.init.constant_(conv.bias, 20.0)
    path = tmp_path_factory.mktemp("e2e") / "nano-e2e.pth"
    save_checkpoint(path, model, names=yoloxkit.Detector().names, model_name="yolox-nano-e2e", input_size=416)
    return path


@pytest.fixture(scope="module")
def reference(e2e_checkpoint, dog_jpg):
    """The torch Detector's NMS-free detections on dog.jpg at 416."""
    detector = yoloxkit.Detector(weights=e2e_checkpoint)
    assert detector.size == (416, 416) and detector.nms_free
    return detector(str(dog_jpg))[0]


def _same(found, expected) -> None:
    assert len(found) == len(expected) > 5
    np.testing.assert_array_equal(found.class_ids, expected.class_ids)
    np.testing.assert_allclose(found.boxes, expected.boxes, atol=1.0)
    np.testing.assert_allclose(found.scores, expected.scores, atol=1e-3)


def test_onnx_topk_export_has_no_nms_and_matches_detector_in_plain_onnxruntime(
    e2e_checkpoint, reference, dog_jpg, tmp_path, capsys
):
    out = tmp_path / "topk.onnx"
    # no --model: the checkpoint stores yolox-nano-e2e; --topk without K keeps 100
    assert main(["export", "--weights", str(e2e_checkpoint), "--topk", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "model yolox-nano-e2e, input 416x416" in printed and "max abs diff" in printed

    graph = onnx.load(str(out))
    ops = {node.op_type for node in graph.graph.node}
    assert "NonMaxSuppression" not in ops and "TopK" in ops
    assert [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [11]
    meta = {p.key: p.value for p in graph.metadata_props}
    assert (meta["interface"], meta["end_to_end"], meta["topk"], meta["topk_conf"]) == ("topk", "1", "100", "0.25")
    info = describe_weights(out).export
    assert info.interface == "topk" and info.end_to_end and info.topk == 100 and info.topk_conf == 0.25

    import cv2

    image = cv2.imread(str(dog_jpg))
    canvas, ratio = letterbox(image, (416, 416))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["num_dets", "boxes", "scores", "class_ids"]
    num_dets, boxes, scores, class_ids = session.run(None, {"images": canvas.transpose(2, 0, 1)[None].astype(np.float32)})
    assert boxes.shape == (1, 100, 4) and scores.shape == (1, 100) and class_ids.shape == (1, 100)
    n = int(num_dets[0, 0])
    assert n == len(reference)
    boxes = boxes[0, :n] / ratio
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, image.shape[1])
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, image.shape[0])
    np.testing.assert_array_equal(class_ids[0, :n], reference.class_ids)
    np.testing.assert_allclose(boxes, reference.boxes, atol=1.0)
    assert not scores[0, n:].any() and not class_ids[0, n:].any() and not boxes[n:].any()

    detector = yoloxkit.Detector(weights=out)
    assert detector.backend == "onnxruntime" and detector.nms_free
    assert detector.describe().endswith("NMS-free (top-k 100)")
    _same(detector(str(dog_jpg))[0], reference)


def test_nms_flag_on_e2e_model_exports_the_topk_graph(e2e_checkpoint, tmp_path, caplog):
    out = tmp_path / "nms.onnx"
    with caplog.at_level(logging.WARNING, logger="yoloxkit"):
        code = main(["export", "--weights", str(e2e_checkpoint), "--nms", "--max-dets", "30", "--size", "256",
                     "--out", str(out)])
    assert code == 0
    assert any("is NMS-free: --nms exports the top-k graph (--topk 30" in r.getMessage() for r in caplog.records)
    graph = onnx.load(str(out))
    assert "NonMaxSuppression" not in {node.op_type for node in graph.graph.node}
    assert {p.key: p.value for p in graph.metadata_props}["topk"] == "30"
    # options_for_model is what the CLI and the exporters call
    options = options_for_model(ExportOptions(nms=True, max_dets=30), end_to_end=True)
    assert (options.nms, options.topk, options.interface) == (False, 30, "topk")
    assert default_output_path("yolox-nano-e2e", "onnx", options).name == "yolox-nano-e2e-topk.onnx"
    assert main(["export", "--weights", str(e2e_checkpoint), "--nms", "--topk", "5", "--out", str(out)]) == 2
    assert main(["export", "--weights", str(e2e_checkpoint), "--topk", "0", "--out", str(out)]) == 2


def test_dynamic_topk_graph_below_k_anchors(e2e_checkpoint, dog_jpg, tmp_path):
    """At 64x64 the model has 84 anchors: the graph still gives K=100 slots (padded)."""
    out = tmp_path / "dyn.onnx"
    assert main(["export", "--weights", str(e2e_checkpoint), "--topk", "--dynamic", "--size", "64",
                 "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    blank = np.full((3, 3, 64, 64), 114.0, np.float32)
    num_dets, boxes, _, _ = session.run(None, {"images": blank})
    assert num_dets.shape == (3, 1) and boxes.shape == (3, 100, 4) and int(num_dets.max()) <= 84
    detector = yoloxkit.Detector(weights=out, size=320)
    expected = yoloxkit.Detector(weights=e2e_checkpoint, size=320)(str(dog_jpg))[0]
    _same(detector(str(dog_jpg))[0], expected)


@pytest.mark.parametrize("fmt, suffix", [("openvino", "xml"), ("torchscript", "torchscript")])
def test_openvino_and_torchscript_topk_exports_run_through_detector(e2e_checkpoint, reference, dog_jpg, tmp_path,
                                                                    fmt, suffix):
    out = tmp_path / f"topk.{suffix}"
    assert main(["export", "--weights", str(e2e_checkpoint), "--format", fmt, "--topk", "--out", str(out)]) == 0
    detector = yoloxkit.Detector(weights=out)
    assert detector.nms_free and detector.model_name == "yolox-nano-e2e"
    _same(detector(str(dog_jpg))[0], reference)


def test_plain_export_of_e2e_model_is_nms_free_in_detector(e2e_checkpoint, reference, dog_jpg, tmp_path):
    out = tmp_path / "raw.onnx"
    assert main(["export", "--weights", str(e2e_checkpoint), "--out", str(out)]) == 0
    detector = yoloxkit.Detector(weights=out)
    assert detector.end_to_end and detector.nms_free
    _same(detector(str(dog_jpg))[0], reference)
    with_nms = yoloxkit.Detector(weights=out, nms_free=False)(str(dog_jpg))[0]
    assert 3 <= len(with_nms) < len(reference)


def test_topk_graph_of_a_base_model_warns_and_keeps_duplicates(tmp_path, dog_jpg, caplog):
    out = tmp_path / "base-topk.onnx"
    with caplog.at_level(logging.WARNING, logger="yoloxkit"):
        assert main(["export", "--model", "yolox-nano", "--topk", "--size", "256", "--out", str(out)]) == 0
    assert any("is not end-to-end" in r.getMessage() for r in caplog.records)
    detector = yoloxkit.Detector(weights=out)
    assert not detector.end_to_end and detector.nms_free  # the graph's detections are final
    base = yoloxkit.Detector("yolox-nano", size=256)
    assert len(detector(str(dog_jpg))[0]) > len(base(str(dog_jpg))[0])
