"""`yoloxkit serve` as a process: argument errors, and SIGTERM draining in-flight requests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from yoloxkit.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--max-batch", "0"],
        ["serve", "--max-queue", "-3"],
        ["serve", "--conf", "1.5"],
        ["serve", "--port", "70000"],
        ["serve", "--backend", "tensorrt"],
        ["serve", "--max-wait-ms", "abc"],
        ["serve", "--slice", "abc"],
        ["serve", "--slice", "16"],  # smaller than the model's largest stride
        ["serve", "--slice", "640x"],
        ["serve", "--slice", "640", "--slice-overlap", "0"],
        ["serve", "--slice", "640", "--slice-overlap", "1.5"],
        ["serve", "--max-tiles", "0"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("yoloxkit serve: error:")


def test_unknown_model_is_a_one_line_error(capsys):
    assert main(["serve", "--model", "yolox-huge", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "yolox-huge" in err[0]


@pytest.mark.parametrize("given", [["--slice-overlap", "0.3"], ["--slice-full"]])
def test_slice_options_without_slice_are_a_one_line_error(given, capsys):
    assert main(["serve", *given, "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {given[0]} needs --slice H[xW]"]


def test_slice_options_set_the_served_detector():
    from yoloxkit.cli import build_parser
    from yoloxkit.cli.serve import build_detector
    from yoloxkit.infer.slicing import Slicing

    args = build_parser().parse_args(["serve", "--size", "256", "--slice", "256x320", "--slice-overlap", "0.3",
                                      "--slice-full", "--max-tiles", "40"])
    assert args.max_tiles == 40
    detector = build_detector(args)
    assert detector.slicing == Slicing(256, 320, overlap=0.3, full=True)
    assert build_detector(build_parser().parse_args(["serve", "--size", "256"])).slicing is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_drains_in_flight_requests(dog_jpg):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "yoloxkit", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--max-batch", "1", "--max-wait-ms", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "server did not start"
            time.sleep(0.1)

        data = dog_jpg.read_bytes()
        statuses: list[int] = []
        names: list[list[str]] = []
        lock = threading.Lock()

        def client() -> None:
            response = httpx.post(url + "/v1/detect", files={"file": ("dog.jpg", data)}, timeout=60)
            with lock:
                statuses.append(response.status_code)
                names.append([d["name"] for d in response.json().get("detections", [])])

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        # wait until the server holds all six requests, most of them still waiting, then ask to stop
        while True:
            health = httpx.get(url + "/healthz", timeout=5).json()
            if health["received"] == 6:
                break
            assert time.time() < deadline + 60, f"requests never arrived: {health}"
            time.sleep(0.005)
        assert health["served"] < 6
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        # uvicorn finishes the in-flight requests, runs the shutdown (which drains the batcher), then
        # re-raises the signal it captured, so the exit status is "terminated by SIGTERM" (0 on older uvicorn).
        assert proc.wait(60) in (0, -signal.SIGTERM)
        assert statuses == [200] * 6
        assert all("dog" in found for found in names)
        assert "Traceback" not in proc.stderr.read()
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
