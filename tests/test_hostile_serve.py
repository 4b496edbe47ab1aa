"""Hostile input to `yoloxkit serve`: one bad image never fails another request; slow uploads time out.

The server runs in-process (uvicorn in a thread, on a free port) around the real yolox-nano
`Detector` at 320; its log is captured with `caplog`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import numpy as np
import pytest
import uvicorn

import yoloxkit
from serve_support import png_bomb_header
from yoloxkit.serve.app import create_app
from yoloxkit.serve.batcher import MicroBatcher

SIZE = 320


@pytest.fixture(scope="module")
def detector():
    return yoloxkit.Detector("yolox-nano", size=SIZE, device="cpu")


@pytest.fixture(scope="module")
def valid_files(dog_jpg, coco_mini, tmp_path_factory):
    """Four real pictures as PNG files (lossless: the server decodes these very pixels)."""
    folder = tmp_path_factory.mktemp("valid")
    sources = [dog_jpg, *sorted((coco_mini / "val2017").glob("*.jpg"))[:3]]
    paths = []
    for index, source in enumerate(sources):
        path = folder / f"valid{index}.png"
        assert cv2.imwrite(str(path), cv2.imread(str(source)))
        paths.append(path)
    return paths


def png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def hostile_uploads(dog_jpg) -> list[tuple[str, bytes]]:
    """Ten uploads a careless or hostile client sends: (file name, bytes)."""
    dog = cv2.imread(str(dog_jpg))
    whole = png(dog)
    rng = np.random.default_rng(0)
    return [
        ("truncated.png", whole[: len(whole) // 2]),
        ("not-an-image.png", b"this is not an image\n" * 50),
        ("empty.png", b""),
        ("", b""),  # a 0-byte upload without a file name
        ("bomb.png", png_bomb_header(20000, 20000)),
        ("thin-3000x2.png", png(rng.integers(0, 255, (2, 3000, 3), dtype=np.uint8))),
        ("thin-2x3000.png", png(rng.integers(0, 255, (3000, 2, 3), dtype=np.uint8))),
        ("deep-16bit.png", png(rng.integers(0, 65535, (48, 64, 3), dtype=np.uint16))),
        ("header-only.png", whole[:33]),
        ("truncated.jpg", dog_jpg.read_bytes()[:400]),
    ]


@contextlib.contextmanager
def serving(app):
    """``app`` served by uvicorn in a thread on a free port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="info", lifespan="on",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def post_all(url: str, uploads: list[tuple[str, bytes]], threads: int = 8) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=120) as client:
        def post(upload):
            name, data = upload
            return client.post("/v1/detect", files={"file": (name, data, "application/octet-stream")})

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(post, uploads))


def same_detections(got: dict, expected: dict) -> bool:
    if (got["width"], got["height"]) != (expected["width"], expected["height"]):
        return False
    if [d["class_id"] for d in got["detections"]] != [d["class_id"] for d in expected["detections"]]:
        return False
    return all(a["score"] == pytest.approx(b["score"], abs=1e-3) and a["box"] == pytest.approx(b["box"], abs=0.1)
               for a, b in zip(got["detections"], expected["detections"]))


def expected_by_name(detector, paths) -> dict[str, dict]:
    return {p.name: detector.predict([str(p)])[0].to_json() for p in paths}


def assert_one_line_error(response: httpx.Response) -> None:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail, detail


def test_hostile_images_never_fail_other_requests(detector, valid_files, dog_jpg, caplog):
    caplog.set_level(logging.INFO)
    expected = expected_by_name(detector, valid_files)
    valid = [(p.name, p.read_bytes()) for p in valid_files] * 10  # 40 valid requests
    hostile = hostile_uploads(dog_jpg)
    uploads = []
    for index, upload in enumerate(valid):  # one hostile request every four valid ones
        uploads.append(upload)
        if index % 4 == 3:
            uploads.append(hostile[index // 4])
    assert len(uploads) == 50
    app = create_app(detector, max_batch=8, max_wait_ms=50.0)
    with serving(app) as url:
        responses = post_all(url, uploads)
        assert httpx.get(url + "/healthz").json()["status"] == "ok"
    for (name, _), response in zip(uploads, responses):
        if name in expected:
            assert response.status_code == 200, (name, response.text)
            assert same_detections(response.json(), expected[name]), name
        else:  # a hostile upload: refused with one line, or served when it is a real (odd) image
            assert response.status_code == 200 or 400 <= response.status_code < 500, (name, response.text)
            if response.status_code != 200:
                assert_one_line_error(response)
    assert sum(r.status_code == 200 for r in responses) >= 40
    assert "Traceback" not in caplog.text


def test_a_request_failing_in_the_detector_fails_alone(detector, valid_files, caplog):
    """A marked image makes the detector's batched call raise: only its request fails, with one
    line in the response and one in the log."""
    caplog.set_level(logging.INFO)
    expected = expected_by_name(detector, valid_files)
    marked = cv2.resize(cv2.imread(str(valid_files[0])), (333, 222))
    shared_batches: list[int] = []
    original = detector.predict_arrays

    def failing_on_marked(arrays, **kwargs):
        if any(a.shape[:2] == (222, 333) for a in arrays):
            shared_batches.append(len(arrays))
            raise ValueError("injected preprocessing failure\nsecond line")
        return original(arrays, **kwargs)

    uploads = [(p.name, p.read_bytes()) for p in valid_files] * 4
    uploads.insert(5, ("marked.png", png(marked)))
    detector.predict_arrays = failing_on_marked
    try:
        with serving(create_app(detector, max_batch=8, max_wait_ms=200.0)) as url:
            responses = post_all(url, uploads)
    finally:
        del detector.predict_arrays
    assert max(shared_batches) > 1  # the marked image did share a batch with valid ones
    for (name, _), response in zip(uploads, responses):
        if name == "marked.png":
            assert response.status_code == 500
            assert_one_line_error(response)
            assert "marked.png" in response.json()["detail"] and "injected" in response.json()["detail"]
        else:
            assert response.status_code == 200, (name, response.text)
            assert same_detections(response.json(), expected[name]), name
    failed = [r for r in caplog.records if r.name.startswith("yoloxkit")]
    assert len(failed) == 1 and "\n" not in failed[0].getMessage()
    assert "Traceback" not in caplog.text


def test_batcher_fails_only_the_failing_payload():
    calls: list[list[int]] = []

    def run(payloads):
        calls.append(list(payloads))
        if 3 in payloads:
            raise ValueError("payload 3 is bad")
        return [p * 10 for p in payloads]

    batcher = MicroBatcher(run, max_batch=8, max_wait_ms=300, max_queue=16)
    futures = [batcher.submit(i) for i in range(6)]  # within max_wait: one batch
    for i, future in enumerate(futures):
        if i == 3:
            with pytest.raises(ValueError, match="payload 3 is bad"):
                future.result(10)
        else:
            assert future.result(10).result == i * 10
    assert calls[0] == list(range(6))  # one shared batch first, then each request alone
    assert batcher.submit(7).result(10).result == 70 and batcher.alive
    batcher.close()


def stalled_upload(url: str, drip_s: float | None, wait_s: float = 20.0) -> tuple[bytes, float]:
    """Send the headers and part of a body announced as 100 kB, then stall (``drip_s`` None) or
    send one byte every ``drip_s`` seconds; return what the server sent back and when it closed."""
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: test\r\n"
                     b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
                     b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.png\"\r\n\r\n")
        received = b""
        sock.settimeout(drip_s or wait_s)
        while time.perf_counter() - started < wait_s:
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                with contextlib.suppress(OSError):
                    sock.sendall(b"x")
                continue
            except OSError:
                break
            if not chunk:
                break  # the server closed the connection
            received += chunk
        return received, time.perf_counter() - started


@pytest.mark.parametrize("drip_s", [None, 0.2], ids=["stalled", "dripping"])
def test_slow_upload_is_cut_off_with_408(drip_s, caplog):
    from serve_support import FakeDetector, encode, sample_image

    caplog.set_level(logging.INFO)
    app = create_app(FakeDetector(), read_timeout_s=1.0)
    with serving(app) as url:
        answer, elapsed = stalled_upload(url, drip_s)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"read timeout of 1 s" in answer
        assert 0.9 < elapsed < 10  # cut off after the timeout, the connection closed
        good = httpx.post(url + "/v1/detect", files={"file": ("a.png", encode(sample_image()))}, timeout=30)
        assert good.status_code == 200
    timed_out = [r.getMessage() for r in caplog.records if r.name.startswith("yoloxkit")]
    assert len(timed_out) == 1 and "\n" not in timed_out[0]
    assert "Traceback" not in caplog.text
