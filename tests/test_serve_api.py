"""HTTP API of `yoloxkit serve`, in process, against a fast fake detector."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve_support import FakeDetector, encode, png_bomb_header, sample_image
from yoloxkit.infer.classes import UnknownClassError
from yoloxkit.serve.app import create_app, requested_class_ids
from yoloxkit.serve.limits import UploadLimits


@pytest.fixture()
def fake() -> FakeDetector:
    return FakeDetector()


@pytest.fixture()
def client(fake):
    app = create_app(fake, conf=0.25, nms=0.45, max_wait_ms=1.0,
                     limits=UploadLimits(max_upload_bytes=200_000, max_pixels=1_000_000))
    with TestClient(app) as test_client:
        yield test_client


def upload(client, data: bytes, name: str = "img.png", **params):
    return client.post("/v1/detect", files={"file": (name, data, "application/octet-stream")}, params=params)


async def wait_until(predicate, timeout_s: float = 30.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def assert_healthy(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_health_model_and_schema(client):
    assert_healthy(client)
    info = client.get("/v1/model").json()
    assert info["name"] == "fake-yolox" and info["backend"] == "fake"
    assert info["classes"] == ["person", "dog", "bicycle", "traffic light"] and info["num_classes"] == 4
    assert info["input_size"] == [416, 416] and info["conf"] == 0.25 and info["nms"] == 0.45
    assert info["max_batch"] == 8 and info["max_queue"] == 64
    schema = client.get("/openapi.json").json()
    detect = schema["paths"]["/v1/detect"]["post"]
    assert "multipart/form-data" in detect["requestBody"]["content"]
    assert {p["name"] for p in detect["parameters"]} == {"conf", "nms", "classes", "slice", "slice_overlap", "slice_full"}
    assert {"200", "400", "413", "415", "422", "503"} <= set(detect["responses"])


def test_detect_returns_detections_json(client, fake):
    response = upload(client, encode(sample_image(64, 48)), name="../secret/dir/pic.png")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"] == "pic.png" and (body["width"], body["height"]) == (64, 48)
    assert body["model"] == "fake-yolox"
    # default conf 0.25 keeps dog 0.9 and bicycle 0.5, drops person 0.1
    assert [d["name"] for d in body["detections"]] == ["dog", "bicycle"]
    dog = body["detections"][0]
    assert dog["class_id"] == 1 and dog["score"] == pytest.approx(0.9)
    assert dog["box"] == pytest.approx([6.4, 9.6, 32.0, 43.2], abs=0.01)
    timing = body["timing"]
    assert set(timing) == {"queue_ms", "inference_ms", "total_ms", "batch_size"}
    assert timing["total_ms"] >= timing["inference_ms"] >= 0 and timing["batch_size"] == 1
    assert fake.calls == [(1, 0.25, 0.45)]


def test_detect_per_request_options(client, fake):
    data = encode(sample_image())
    assert [d["name"] for d in upload(client, data, conf=0.05).json()["detections"]] == ["dog", "bicycle", "person"]
    assert [d["name"] for d in upload(client, data, conf=0.6).json()["detections"]] == ["dog"]
    only = upload(client, data, conf=0.05, classes="Person, bicycle").json()["detections"]
    assert [d["name"] for d in only] == ["bicycle", "person"]
    assert upload(client, data, nms=0.7).status_code == 200
    assert fake.calls[-1] == (1, 0.25, 0.7)
    # a JPEG whose channels must come through in BGR order, as cv2.imread gives them
    response = upload(client, encode(sample_image(80, 60), ".jpg"), name="x.jpg")
    assert response.status_code == 200 and response.json()["width"] == 80


@pytest.mark.parametrize(
    "case, status",
    [
        ("empty", 400),
        ("text", 415),
        ("truncated_jpeg", 400),
        ("truncated_png", 400),
        ("too_large_upload", 413),
        ("file_just_over_limit", 413),
        ("too_many_pixels", 413),
        ("png_bomb", 413),
        ("unknown_class", 422),
        ("conf_out_of_range", 422),
        ("nms_not_a_number", 422),
        ("no_file_field", 422),
    ],
)
def test_bad_input_gets_its_status_and_server_keeps_serving(client, case, status):
    good = encode(sample_image(64, 48))
    jpeg = encode(sample_image(64, 48), ".jpg")
    if case == "empty":
        response = upload(client, b"")
    elif case == "text":
        response = upload(client, b"hello, this is not an image\n" * 10, name="notes.txt")
    elif case == "truncated_jpeg":
        response = upload(client, jpeg[: len(jpeg) // 2], name="cut.jpg")
    elif case == "truncated_png":
        response = upload(client, good[: len(good) // 2])
    elif case == "too_large_upload":
        response = upload(client, b"\xff" * 300_000)
    elif case == "file_just_over_limit":  # within the multipart slack, caught on the file itself
        response = upload(client, b"\xff" * 210_000)
    elif case == "too_many_pixels":
        response = upload(client, encode(np.zeros((1001, 1000, 3), np.uint8)))
    elif case == "png_bomb":
        response = upload(client, png_bomb_header(100_000, 100_000))
    elif case == "unknown_class":
        response = upload(client, good, classes="dog,unicorn")
    elif case == "conf_out_of_range":
        response = upload(client, good, conf=1.5)
    elif case == "nms_not_a_number":
        response = upload(client, good, nms="abc")
    else:
        response = client.post("/v1/detect", data={"other": "x"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail  # one line, also for FastAPI's checks
    if case == "conf_out_of_range":
        assert detail.startswith("conf:") and "1.5" in detail
    if case == "unknown_class":
        assert "unicorn" in response.json()["detail"]
    assert_healthy(client)
    assert upload(client, good).status_code == 200


def test_upload_limit_counts_the_body_not_only_the_header(fake):
    app = create_app(fake, limits=UploadLimits(max_upload_bytes=1000, max_pixels=10_000))

    def chunks():
        for _ in range(200):
            yield b"x" * 1024

    with TestClient(app) as client:
        boundary = "b0undary"
        response = client.post(
            "/v1/detect",
            content=chunks(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413
        assert_healthy(client)


def test_inference_failure_is_json_500_and_server_recovers():
    failing = FakeDetector(fail=True)
    app = create_app(failing)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = upload(client, encode(sample_image()))
        assert response.status_code == 500 and "RuntimeError" in response.json()["detail"]
        failing.fail = False
        assert upload(client, encode(sample_image())).status_code == 200
        assert_healthy(client)


def test_index_page_and_static_files_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert 'src="/static/app.js"' in html and 'href="/static/app.css"' in html
    for asset in ("/static/app.js", "/static/app.css"):
        text = client.get(asset).text
        assert client.get(asset).status_code == 200 and len(text) > 500
        assert "http://" not in text and "https://" not in text
    assert "http://" not in html and "https://" not in html
    # FastAPI's CDN-backed documentation pages are not served
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


def test_requested_class_ids():
    names = ["person", "dog", "traffic light"]
    assert requested_class_ids(None, names) is None and requested_class_ids(" , ", names) is None
    assert requested_class_ids("dog,traffic light", names) == {1, 2}
    assert requested_class_ids("DOG", names) == {1}
    with pytest.raises(UnknownClassError, match="'cat'") as caught:
        requested_class_ids("dog,cat", names)
    assert caught.value.name == "cat"


def test_concurrent_requests_share_a_forward_pass_with_their_own_conf():
    fake = FakeDetector(delay_s=0.05)
    app = create_app(fake, max_batch=8, max_wait_ms=300.0)
    data = encode(sample_image())

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            confs = [0.05, 0.3, 0.6, 0.95]
            responses = await asyncio.gather(*[
                http.post("/v1/detect", params={"conf": c}, files={"file": ("a.png", data)}) for c in confs
            ])
            return confs, responses

    confs, responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 4
    counts = [len(r.json()["detections"]) for r in responses]
    assert counts == [3, 2, 1, 0]
    # one forward pass at the lowest requested conf served all four
    assert fake.calls == [(4, 0.05, 0.45)]
    assert {r.json()["timing"]["batch_size"] for r in responses} == {4}
    app.state.batcher.close()


def test_full_queue_answers_503_with_retry_after():
    import threading

    gate = threading.Event()
    blocked = FakeDetector(gate=gate)
    app = create_app(blocked, max_batch=1, max_wait_ms=0.0, max_queue=2)
    data = encode(sample_image())

    async def overload():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            def post():
                return asyncio.create_task(http.post("/v1/detect", files={"file": ("a.png", data)}))

            tasks = [post()]
            await wait_until(lambda: blocked.calls)  # the first request is held in the detector...
            tasks += [post() for _ in range(7)]
            # ...two more wait in the queue, and the other five are turned away at once
            await wait_until(lambda: sum(t.done() for t in tasks) == 5)
            health = await http.get("/healthz")
            rejected = [t.result() for t in tasks if t.done()]
            pending = [t for t in tasks if not t.done()]
            gate.set()
            served = await asyncio.gather(*pending)
            return rejected, served, health

    rejected, served, health = asyncio.run(overload())
    assert len(rejected) == 5 and {r.status_code for r in rejected} == {503}
    for r in rejected:
        assert int(r.headers["retry-after"]) >= 1 and "queue full" in r.json()["detail"]
    assert health.status_code == 200 and health.json()["queued"] == 2
    assert len(served) == 3 and all(r.status_code == 200 for r in served)
    app.state.batcher.close()


def test_decoded_size_budget_turns_big_images_away_while_others_wait():
    import threading

    gate = threading.Event()
    blocked = FakeDetector(gate=gate)
    # 200x200x3 = 120,000 bytes decoded; a budget of 0.2 MiB holds one waiting image, not two
    app = create_app(blocked, max_batch=1, max_wait_ms=0.0, max_queue=64, max_queued_mb=0.2)
    data = encode(sample_image(200, 200))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            def post():
                return asyncio.create_task(http.post("/v1/detect", files={"file": ("a.png", data)}))

            first = post()
            await wait_until(lambda: blocked.calls)
            second = post()
            await wait_until(lambda: app.state.batcher.queued >= 1)
            third = await http.post("/v1/detect", files={"file": ("a.png", data)})
            gate.set()
            return (await first), (await second), third

    first, second, third = asyncio.run(scenario())
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 503)
    assert "size budget" in third.json()["detail"] and third.headers["retry-after"]
    app.state.batcher.close()
