"""Batching rules of the server equal running each request alone, on the real yolox-nano Detector."""

from __future__ import annotations

import cv2
import pytest

import yoloxkit
from yoloxkit.serve.detect import DetectJob, run_jobs


@pytest.fixture(scope="module")
def detector():
    return yoloxkit.Detector("yolox-nano", device="cpu")


def test_mixed_options_in_one_batch_match_single_requests(detector, dog_jpg, coco_mini):
    val = sorted((coco_mini / "val2017").glob("*.jpg"))[:3]
    images = [cv2.imread(str(p)) for p in [dog_jpg, *val]]
    dog = detector.names.index("dog")
    jobs = [
        DetectJob(images[0], conf=0.05, nms=0.45, name="dog.jpg"),
        DetectJob(images[0], conf=0.5, nms=0.45, class_ids=frozenset({dog})),
        DetectJob(images[1], conf=0.3, nms=0.45),
        DetectJob(images[2], conf=0.1, nms=0.65),
        DetectJob(images[3], conf=0.25, nms=0.65),
        DetectJob(images[0], conf=0.2, nms=0.3),
    ]
    calls = []
    original = detector.predict_arrays

    def spy(arrays, **kwargs):
        calls.append((len(arrays), kwargs["conf"], kwargs["nms"]))
        return original(arrays, **kwargs)

    detector.predict_arrays = spy
    try:
        batched = run_jobs(detector, jobs)
    finally:
        del detector.predict_arrays
    # one forward pass per distinct NMS threshold, at the lowest conf of its requests
    assert sorted(calls) == sorted([(3, 0.05, 0.45), (2, 0.1, 0.65), (1, 0.2, 0.3)])
    assert batched[0]["image"] == "dog.jpg" and batched[2]["image"] is None
    assert [d["name"] for d in batched[1]["detections"]] == ["dog"]
    for job, got in zip(jobs, batched):
        classes = None if job.class_ids is None else sorted(job.class_ids)
        alone = detector.predict_arrays([job.image], conf=job.conf, nms=job.nms, classes=classes)[0].to_json()
        assert (got["width"], got["height"]) == (alone["width"], alone["height"])
        assert [d["class_id"] for d in got["detections"]] == [d["class_id"] for d in alone["detections"]]
        for a, b in zip(got["detections"], alone["detections"]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)
            assert a["box"] == pytest.approx(b["box"], abs=0.05)
    assert len(batched[0]["detections"]) > len(batched[5]["detections"]) > 0


def test_serving_the_official_onnx_model_with_onnxruntime(nano_onnx, dog_jpg):
    from fastapi.testclient import TestClient

    from yoloxkit.serve.app import create_app

    detector = yoloxkit.Detector(weights=str(nano_onnx), backend="onnxruntime")
    with TestClient(create_app(detector)) as client:
        info = client.get("/v1/model").json()
        assert (info["name"], info["backend"], info["input_size"]) == ("yolox-nano", "onnxruntime", [416, 416])
        data = dog_jpg.read_bytes()
        response = client.post("/v1/detect", files={"file": ("dog.jpg", data)}, params={"classes": "dog,bicycle"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "yolox-nano" and (body["width"], body["height"]) == (768, 576)
        assert {d["name"] for d in body["detections"]} == {"dog", "bicycle"}
