"""An ONNX file exported with --nms runs in plain onnxruntime (no yoloxkit code at inference)
and gives the same detections on dog.jpg as Detector."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

import yoloxkit
from yoloxkit.cli import main


def _letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    ratio = min(size / image.shape[0], size / image.shape[1])
    resized = cv2.resize(image, (int(image.shape[1] * ratio), int(image.shape[0] * ratio)), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), ratio


def test_nms_export_in_plain_onnxruntime_matches_detector(tmp_path, dog_jpg, capsys):
    out = tmp_path / "nano-nms.onnx"
    assert main(["export", "--model", "yolox-nano", "--nms", "--size", "416", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max abs diff" in printed and str(out) in printed

    image = cv2.imread(str(dog_jpg))
    blob, ratio = _letterbox(image, 416)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["num_dets", "boxes", "scores", "class_ids"]
    num_dets, boxes, scores, class_ids = session.run(None, {"images": blob})
    n = int(num_dets[0, 0])
    boxes = boxes[0, :n] / ratio
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, image.shape[1])
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, image.shape[0])

    expected = yoloxkit.Detector("yolox-nano", conf=0.25, nms=0.45)(str(dog_jpg))[0]
    assert n == len(expected) >= 3
    assert {"dog", "bicycle", "car"} <= {expected.names[i] for i in expected.class_ids}
    np.testing.assert_array_equal(class_ids[0, :n], expected.class_ids)
    np.testing.assert_allclose(scores[0, :n], expected.scores, atol=1e-4)
    np.testing.assert_allclose(boxes, expected.boxes, atol=0.05)
    assert not scores[0, n:].any() and not class_ids[0, n:].any()
