"""Sliced inference in the server: request options, their errors, /v1/model, and batching groups (fake detector)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve_support import FakeDetector, encode, sample_image
from yoloxkit.errors import InferenceError
from yoloxkit.infer.slicing import Slicing
from yoloxkit.serve.app import create_app
from yoloxkit.serve.detect import DetectJob, run_jobs
from yoloxkit.serve.options import check_slicing, request_slicing

IMAGE = encode(sample_image(64, 48))  # width 64, height 48


def post(client, params=None, data=None, image: bytes = IMAGE):
    return client.post("/v1/detect", params=params or {}, data=data or {}, files={"file": ("a.png", image)})


@pytest.fixture()
def fake() -> FakeDetector:
    return FakeDetector()


@pytest.fixture()
def client(fake):
    with TestClient(create_app(fake, max_wait_ms=0.0, max_tiles=50)) as test_client:
        yield test_client


def test_model_info_reports_slicing_and_nms_free(client):
    info = client.get("/v1/model").json()
    assert info["slicing"] is None and info["nms_free"] is False and info["max_tiles"] == 50
    slicing = Slicing(32, 40, overlap=0.3, full=True, merge="nmm", match="ios", threshold=0.6)
    fake = FakeDetector(slicing=slicing)
    fake.nms_free = True
    with TestClient(create_app(fake)) as other:
        info = other.get("/v1/model").json()
    assert info["slicing"] == {"height": 32, "width": 40, "overlap": 0.3, "full": True, "merge": "nmm",
                               "match": "ios", "threshold": 0.6}
    assert info["nms_free"] is True and info["max_tiles"] == 256


def test_request_slicing_reaches_the_detector(client, fake):
    assert post(client).status_code == 200
    assert fake.slicings[-1] is None  # no option: the detector's own (here none), keyword not passed
    response = post(client, {"slice": "40"})
    assert response.status_code == 200, response.text
    assert fake.slicings[-1] == Slicing(40, 40)
    assert (response.json()["width"], response.json()["height"]) == (64, 48)
    assert post(client, {"slice": "40X48", "slice_overlap": 0.5, "slice_full": "true"}).status_code == 200
    assert fake.slicings[-1] == Slicing(40, 48, overlap=0.5, full=True)
    # the same options as multipart form fields; both places at once must agree
    assert post(client, data={"slice": "32x40", "slice_full": "on"}).status_code == 200
    assert fake.slicings[-1] == Slicing(32, 40, full=True)
    assert post(client, {"slice": "32"}, data={"slice": "32", "slice_overlap": "0.25"}).status_code == 200
    assert fake.slicings[-1] == Slicing(32, 32, overlap=0.25)
    assert post(client, {"slice": "off"}).status_code == 200  # no default slicing: off is the default
    assert fake.slicings[-1] is None


def test_server_default_slicing_and_per_request_changes():
    fake = FakeDetector(slicing=Slicing(32, 32, overlap=0.3, full=True, merge="nmm"))
    with TestClient(create_app(fake, max_wait_ms=0.0)) as client:
        assert post(client).status_code == 200 and fake.slicings[-1] is None  # the detector slices itself
        assert post(client, {"slice": "off"}).status_code == 200 and fake.slicings[-1] is False
        # a field left out keeps the server's value, merge settings included
        assert post(client, {"slice": "40"}).status_code == 200
        assert fake.slicings[-1] == Slicing(40, 40, overlap=0.3, full=True, merge="nmm")
        assert post(client, {"slice_full": "false"}).status_code == 200
        assert fake.slicings[-1] == Slicing(32, 32, overlap=0.3, full=False, merge="nmm")
        assert post(client, {"slice_overlap": "0.5"}).status_code == 200
        assert fake.slicings[-1] == Slicing(32, 32, overlap=0.5, full=True, merge="nmm")
        # an image smaller than the server's own slice is refused before it reaches a batch
        calls = len(fake.calls)
        small = post(client, image=encode(sample_image(40, 20)))
        assert small.status_code == 422
        assert "slice 32x32 is larger than image a.png (20x40" in small.json()["detail"]
        assert "slice=off" in small.json()["detail"] and len(fake.calls) == calls
        assert post(client, {"slice": "off"}, image=encode(sample_image(40, 20))).status_code == 200


@pytest.mark.parametrize(
    "params, data, words",
    [
        ({"slice": "abc"}, {}, ["slice must be H or HxW", "'abc'"]),
        ({"slice": "16"}, {}, ["slice 16x16", "stride"]),
        ({"slice": "0"}, {}, ["slice 0x0"]),
        ({"slice": "32x"}, {}, ["slice must be H or HxW"]),
        ({"slice": "64"}, {}, ["slice 64x64 is larger than image a.png (48x64, h x w)"]),
        ({"slice": "32x80"}, {}, ["slice 32x80 is larger than image a.png"]),
        ({"slice": "32", "slice_overlap": "0"}, {}, ["slice_overlap must be between 0 and 1"]),
        ({"slice": "32", "slice_overlap": "1"}, {}, ["slice_overlap must be between 0 and 1"]),
        ({"slice": "32", "slice_overlap": "1.5"}, {}, ["slice_overlap", "1.5"]),
        ({"slice": "32", "slice_overlap": "nan"}, {}, ["slice_overlap", "nan"]),
        ({"slice": "32", "slice_overlap": "abc"}, {}, ["slice_overlap:", "valid number", "'abc'"]),
        ({"slice_overlap": "0.3"}, {}, ["slice_overlap needs slice", "does not slice by default"]),
        ({"slice_full": "true"}, {}, ["slice_full needs slice"]),
        ({"slice": "off", "slice_overlap": "0.3"}, {}, ["slice_overlap needs slice H or HxW, not slice=off"]),
        ({"slice": "32", "slice_full": "maybe"}, {}, ["slice_full:", "valid boolean", "'maybe'"]),
        ({}, {"slice": "abc"}, ["slice must be H or HxW"]),
        ({"slice": "32"}, {"slice": "40"}, ["slice: the query parameter ('32') and the form field ('40') differ"]),
        ({"slice": "32", "slice_overlap": "0.9"}, {}, ["into 84 crops", "limit of 50", "slice_overlap"]),
    ],
)
def test_bad_slice_options_are_422_with_one_line(client, fake, params, data, words):
    response = post(client, params, data)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    for word in words:
        assert word in detail, detail
    assert fake.calls == []  # refused before the batcher
    assert post(client).status_code == 200


class PlainDetector:
    """A DetectorLike without slicing: no ``slicing`` attribute, no ``slicing=`` keyword."""

    names = ["person", "dog"]
    model_name = "plain"
    backend = "fake"
    size = (64, 64)

    def __init__(self) -> None:
        self.fake = FakeDetector()
        self.calls = 0

    def predict(self, images: Sequence[np.ndarray], conf: float | None = None, nms: float | None = None,
                classes: Sequence[int] | None = None) -> list:
        self.calls += 1
        return self.fake.predict(images, conf=conf, nms=nms, classes=classes)


def test_a_detector_without_slicing_keeps_working_and_refuses_slices():
    plain = PlainDetector()
    jobs = [DetectJob(sample_image(), 0.25, 0.45), DetectJob(sample_image(), 0.05, 0.45, slicing=False)]
    assert [len(r["detections"]) for r in run_jobs(plain, jobs)] == [2, 3] and plain.calls == 1
    with TestClient(create_app(plain, max_wait_ms=0.0)) as client:
        assert post(client).status_code == 200 and post(client, {"slice": "off"}).status_code == 200
        response = post(client, {"slice": "32"})
        assert response.status_code == 422 and "does not run sliced inference" in response.json()["detail"]
        assert client.get("/v1/model").json()["slicing"] is None


def test_run_jobs_groups_by_slicing():
    tiles = Slicing(32, 32, merge="nmm")
    tiles_nms = Slicing(32, 32, merge="nms")
    image = sample_image()
    fake = FakeDetector()
    jobs = [
        DetectJob(image, 0.3, 0.45),                      # whole image (the detector's default)
        DetectJob(image, 0.05, 0.45, slicing=False),      # whole image, asked for: same pass
        DetectJob(image, 0.1, 0.45, slicing=tiles),       # greedy merging: its own conf...
        DetectJob(image, 0.3, 0.45, slicing=tiles),       # ...so its own pass
        DetectJob(image, 0.1, 0.45, slicing=tiles),       # same slicing and conf: shares
        DetectJob(image, 0.1, 0.45, slicing=tiles_nms),   # NMS merging: one pass at the lowest conf
        DetectJob(image, 0.6, 0.45, slicing=tiles_nms),
        DetectJob(image, 0.1, 0.7, slicing=tiles_nms),    # another NMS threshold
    ]
    results = run_jobs(fake, jobs)
    passes = sorted(zip(fake.calls, map(repr, fake.slicings)))
    assert passes == sorted([
        ((2, 0.05, 0.45), "None"),
        ((2, 0.1, 0.45), repr(tiles)),
        ((1, 0.3, 0.45), repr(tiles)),
        ((2, 0.1, 0.45), repr(tiles_nms)),
        ((1, 0.1, 0.7), repr(tiles_nms)),
    ])
    assert [len(r["detections"]) for r in results] == [2, 3, 3, 2, 3, 3, 1, 3]  # each job's own conf


def test_run_jobs_with_a_default_slicing_passes_only_changes():
    default = Slicing(32, 32)
    fake = FakeDetector(slicing=default)
    image = sample_image()
    jobs = [DetectJob(image, 0.25, 0.45), DetectJob(image, 0.25, 0.45, slicing=Slicing(32, 32)),
            DetectJob(image, 0.25, 0.45, slicing=False), DetectJob(image, 0.25, 0.45, slicing=Slicing(40, 40))]
    run_jobs(fake, jobs)
    assert sorted(zip(fake.calls, map(repr, fake.slicings))) == sorted([
        ((2, 0.25, 0.45), "None"),  # the default, asked for or not: no keyword
        ((1, 0.25, 0.45), "False"),
        ((1, 0.25, 0.45), repr(Slicing(40, 40))),
    ])


def test_request_slicing_and_crop_count():
    default = Slicing(64, 48, overlap=0.3, full=True, merge="nmm", threshold=0.6)
    assert request_slicing(None) is None and request_slicing(default) is None
    assert request_slicing(None, full=False) is None
    assert request_slicing(default, "OFF") is False and request_slicing(None, " off ", full=False) is False
    assert request_slicing(None, "40x50") == Slicing(40, 50)
    assert request_slicing(default, "40") == Slicing(40, 40, overlap=0.3, full=True, merge="nmm", threshold=0.6)
    assert request_slicing(default, overlap=0.5, full=False) == Slicing(64, 48, 0.5, False, "nmm", threshold=0.6)
    with pytest.raises(InferenceError, match="slice_overlap must be between 0 and 1"):
        request_slicing(default, overlap=-0.1)
    with pytest.raises(InferenceError, match="slice_full needs slice"):
        request_slicing(None, full=True)
    for height, width, slicing in [(48, 64, Slicing(32, 32)), (100, 77, Slicing(33, 40, 0.45, True)),
                                   (500, 300, Slicing(32, 64, 0.9)), (64, 64, Slicing(64, 64, 0.5, True))]:
        assert slicing.crop_count(height, width) == len(slicing.tiles(height, width)) + slicing.full
    check_slicing(Slicing(32, 32, 0.9), 48, 64, max_tiles=84)
    with pytest.raises(InferenceError, match="into 84 crops"):
        check_slicing(Slicing(32, 32, 0.9), 48, 64, max_tiles=83)
    with pytest.raises(InferenceError, match="larger than image x.png"):
        check_slicing(Slicing(64, 32), 48, 64, max_tiles=60, name="x.png")
