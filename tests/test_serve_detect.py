"""Batching rules of the server equal running each request alone, on the real yolox-nano Detector."""

from __future__ import annotations

import contextlib

import cv2
import pytest

import yoloxkit
from yoloxkit.serve.detect import DetectJob, run_jobs


@contextlib.contextmanager
def spying(detector, record):
    """``detector.predict_arrays`` appends ``record(len(arrays), kwargs)`` to the yielded list."""
    calls, original = [], detector.predict_arrays

    def spy(arrays, **kwargs):
        calls.append(record(len(arrays), kwargs))
        return original(arrays, **kwargs)

    detector.predict_arrays = spy
    try:
        yield calls
    finally:
        del detector.predict_arrays


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
    with spying(detector, lambda n, kwargs: (n, kwargs["conf"], kwargs["nms"])) as calls:
        batched = run_jobs(detector, jobs)
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


@pytest.fixture(scope="module")
def nano256():
    return yoloxkit.Detector("yolox-nano", size=256, device="cpu")


def same_detections(got: dict, expected: dict) -> bool:
    if (got["width"], got["height"]) != (expected["width"], expected["height"]):
        return False
    if [d["class_id"] for d in got["detections"]] != [d["class_id"] for d in expected["detections"]]:
        return False
    return all(a["score"] == pytest.approx(b["score"], abs=1e-4) and a["box"] == pytest.approx(b["box"], abs=0.05)
               for a, b in zip(got["detections"], expected["detections"]))


def test_sliced_requests_equal_the_sliced_detector(nano256, dog_jpg):
    from fastapi.testclient import TestClient

    from yoloxkit.serve.app import create_app

    image = cv2.imread(str(dog_jpg))  # 768 x 576
    ok, png = cv2.imencode(".png", image)  # lossless: the server decodes these very pixels
    assert ok
    sliced = yoloxkit.Detector("yolox-nano", size=256, device="cpu", slice_size="256x320")
    expected = sliced.predict_arrays([image])[0].to_json()
    whole = nano256.predict_arrays([image])[0].to_json()

    def detect(client, **params) -> dict:
        response = client.post("/v1/detect", params=params, files={"file": ("dog.png", png.tobytes())})
        assert response.status_code == 200, response.text
        return response.json()

    with TestClient(create_app(nano256, max_wait_ms=0.0)) as client:
        asked = detect(client, slice="256x320")
        plain = detect(client)
        assert client.get("/v1/model").json()["slicing"] is None
    with TestClient(create_app(sliced, max_wait_ms=0.0)) as client:
        by_default = detect(client)
        off = detect(client, slice="off")
        info = client.get("/v1/model").json()["slicing"]
    assert (info["height"], info["width"], info["overlap"], info["full"]) == (256, 320, 0.2, False)
    assert same_detections(asked, expected) and same_detections(by_default, expected)
    assert same_detections(plain, whole) and same_detections(off, whole)
    assert not same_detections(asked, whole)  # the tiles see other things than the whole image
    boxes = [d["box"] for d in asked["detections"]]
    assert boxes and all(0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576 for x1, y1, x2, y2 in boxes)
    assert max(b[2] for b in boxes) > 320 and max(b[3] for b in boxes) > 256  # image pixels, not a tile's


def test_mixed_slicings_in_one_batch_match_single_requests(nano256, dog_jpg, coco_mini):
    from yoloxkit.infer.slicing import Slicing

    val = sorted((coco_mini / "val2017").glob("*.jpg"))[:1]
    images = [cv2.imread(str(p)) for p in [dog_jpg, *val]]
    nmm, nms, full = Slicing(256, 256, merge="nmm"), Slicing(256, 320, merge="nms"), Slicing(256, 256, full=True)
    jobs = [
        DetectJob(images[0], conf=0.05, nms=0.45),
        DetectJob(images[1], conf=0.3, nms=0.45, slicing=False),
        DetectJob(images[0], conf=0.1, nms=0.45, slicing=nmm),
        DetectJob(images[0], conf=0.3, nms=0.45, slicing=nmm),
        DetectJob(images[0], conf=0.1, nms=0.45, slicing=nms),
        DetectJob(images[1], conf=0.4, nms=0.45, slicing=nms),
        DetectJob(images[0], conf=0.2, nms=0.45, slicing=full),
        DetectJob(images[1], conf=0.4, nms=0.45, slicing=full),  # whole-image boxes block tiles: own conf
    ]
    with spying(nano256, lambda n, kwargs: (n, kwargs["conf"], repr(kwargs.get("slicing")))) as calls:
        batched = run_jobs(nano256, jobs)
    assert sorted(calls) == sorted([(2, 0.05, "None"), (1, 0.1, repr(nmm)), (1, 0.3, repr(nmm)),
                                    (2, 0.1, repr(nms)), (1, 0.2, repr(full)), (1, 0.4, repr(full))])
    for job, got in zip(jobs, batched):
        alone = nano256.predict_arrays([job.image], conf=job.conf, slicing=job.slicing)[0].to_json()
        assert same_detections(got, alone), (job.conf, job.slicing)
    assert len(batched[2]["detections"]) > len(batched[3]["detections"]) > 0
