"""Zoo names as ``--weights`` (``yolox-nano``: bundled, others: the official download) and the
clean, fast failure when the download cannot happen. No test reaches the network: name lookups are
made to fail, or a dead proxy stands in for the release server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error

import pytest
import torch

from yoloxkit.cli import build_parser, main
from yoloxkit.errors import DownloadError, WeightsError
from yoloxkit.infer import Detector
from yoloxkit.models import build_network
from yoloxkit.weights import (
    WeightsSource,
    bundled_weights_path,
    cached_official,
    describe_weights,
    hub,
    official_weights_url,
    resolve_weights,
    resolve_weights_source,
)

WEIGHTS_HELP = "path or zoo name (yolox-s: bundled for nano, the official download otherwise)"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty weights cache and a machine without name resolution; records each lookup."""
    monkeypatch.setenv("YOLOXKIT_HOME", str(tmp_path / "home"))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    lookups: list[str] = []

    def no_dns(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    return lookups


def _best_scores(detections) -> dict[str, float]:
    best: dict[str, float] = {}
    for name, score in zip(detections.class_names, detections.scores):
        best[name] = max(float(score), best.get(name, 0.0))
    return best


# ------------------------------------------------------------------------------------ resolving names


@pytest.mark.parametrize("name", ["yolox-nano", "yolox_nano", "YOLOX-Nano"])
def test_nano_name_is_the_bundled_file(name, offline):
    source = resolve_weights_source(None, name)
    assert source == WeightsSource(bundled_weights_path(), "bundled", "yolox-nano")
    assert resolve_weights_source("nano", name) == source
    assert resolve_weights(None, name) == bundled_weights_path()
    assert source.describe() == f"the bundled yolox-nano COCO weights ({bundled_weights_path()})"
    assert offline == []  # nothing looked up, nothing fetched


def test_default_weights_and_files_keep_working(tmp_path):
    assert resolve_weights_source("yolox-nano").kind == "bundled"
    path = tmp_path / "w.pth"
    path.write_bytes(b"x")
    source = resolve_weights_source("yolox-s", path)
    assert source == WeightsSource(path, "file", None) and source.describe() == str(path)
    with pytest.raises(WeightsError, match="give a model name or a weights file"):
        resolve_weights_source(None, None)


def test_a_file_named_like_a_model_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yolox-s").write_bytes(b"x")
    source = resolve_weights_source(None, "yolox-s")
    assert source.kind == "file" and source.path.name == "yolox-s"


def test_neither_file_nor_name_is_one_line_with_a_hint(tmp_path):
    missing = tmp_path / "nothing.pth"
    with pytest.raises(WeightsError) as info:
        resolve_weights_source(None, missing)
    message = str(info.value)
    assert message.startswith(f"weights file not found: {missing}") and "\n" not in message
    assert "zoo name" in message and "yolox-s" in message
    for not_a_name in ("yolox-s/", "models/yolox-s", ""):
        with pytest.raises(WeightsError, match="weights file not found"):
            resolve_weights_source(None, not_a_name)


def test_model_and_weights_naming_different_models_is_one_line():
    with pytest.raises(WeightsError) as info:
        resolve_weights_source("yolox-s", "yolox-nano")
    message = str(info.value)
    assert "yolox-s" in message and "yolox-nano" in message and "\n" not in message
    with pytest.raises(WeightsError, match="yolox-tiny.*yolox-nano"):
        Detector("yolox-tiny", weights="yolox-nano")


# ------------------------------------------------------------------------------------ Detector


def test_detector_takes_the_nano_name(dog_jpg):
    by_both = Detector("yolox-nano", weights="yolox-nano")
    by_weights = Detector(weights="yolox-nano")
    for detector in (by_both, by_weights):
        assert detector.model_name == "yolox-nano" and detector.size == (416, 416)
    [first] = by_both(str(dog_jpg))
    [second] = by_weights(str(dog_jpg))
    assert first.class_names == second.class_names and (first.scores == second.scores).all()
    best = _best_scores(first)
    assert best.get("dog", 0) >= 0.75 and best.get("bicycle", 0) >= 0.75
    assert max(best.get("car", 0.0), best.get("truck", 0.0)) >= 0.5


# ------------------------------------------------------------------------------------ official downloads


def test_offline_name_fails_with_one_line_naming_the_url(offline, tmp_path):
    url = official_weights_url("yolox-s")
    with pytest.raises(DownloadError) as info:
        resolve_weights_source(None, "yolox-s")
    message = str(info.value)
    assert url in message and "--weights PATH" in message and "--weights none" not in message
    assert "\n" not in message
    with pytest.raises(DownloadError) as info:
        resolve_weights_source("yolox-s", "yolox_s", scratch_hint=True)
    message = str(info.value)
    assert url in message and "--weights PATH" in message and "--weights none" in message and "\n" not in message
    with pytest.raises(DownloadError, match="--weights PATH"):
        Detector(weights="yolox-s")
    assert offline and set(offline) == {"github.com"}  # it did try, and only the release server
    cache = tmp_path / "home" / "weights"
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written


def test_official_file_in_the_cache_is_used_without_network(offline, tmp_path, dog_jpg):
    torch.manual_seed(0)
    model = build_network("yolox-tiny")
    cached = cached_official("yolox-tiny")
    assert cached.parent == tmp_path / "home" / "weights"
    cached.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "epoch": 300}, cached)  # the official layout: no names
    url = official_weights_url("yolox-tiny")
    source = resolve_weights_source(None, "yolox-tiny")
    assert source == WeightsSource(cached, "official", "yolox-tiny", url)
    assert source.describe() == f"the official yolox-tiny COCO weights ({cached}, from {url})"
    assert resolve_weights_source("yolox-tiny") == source  # the model's default weights: the same file
    detector = Detector(weights="yolox_tiny")
    assert detector.model_name == "yolox-tiny" and detector.size == (416, 416) and detector.num_classes == 80
    state = detector.model.state_dict()
    assert torch.equal(state["head.cls_preds.0.bias"], model.state_dict()["head.cls_preds.0.bias"])
    assert len(detector(str(dog_jpg))) == 1
    assert offline == []  # served from the cache


# ------------------------------------------------------------------------------------ fast failure


def test_a_hanging_name_lookup_is_cut_short(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "CONNECT_TIMEOUT_S", 0.3)
    release = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: release.wait(30) and [])
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"https://example\.invalid/x\.pth .*timed out.*--weights PATH"):
        hub.download_url("https://example.invalid/x.pth", tmp_path / "x.pth", progress=False)
    release.set()
    assert time.monotonic() - start < 5
    assert not any(tmp_path.iterdir())


def test_a_hanging_connect_is_cut_short(monkeypatch, tmp_path):
    # A listening socket whose backlog is full: the kernel drops further SYNs, so connect() hangs.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    filler = [socket.create_connection(("127.0.0.1", port), timeout=1)]
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
        hangs = False
    except (TimeoutError, socket.timeout):
        hangs = True
    finally:
        probe.close()
    try:
        if not hangs:
            pytest.skip("this platform does not stall connects to a full backlog")
        monkeypatch.setattr(hub, "CONNECT_TIMEOUT_S", 0.5)
        start = time.monotonic()
        with pytest.raises(DownloadError, match=r"timed out after 0\.5 s.*--weights PATH"):
            hub.download_url(f"http://127.0.0.1:{port}/x.pth", tmp_path / "x.pth", progress=False)
        assert time.monotonic() - start < 5  # the read timeout (30 s) does not apply to connecting
    finally:
        for sock in filler:
            sock.close()
        server.close()


def test_a_slow_server_still_downloads(monkeypatch, tmp_path):
    """The short connect timeout does not cut a server that answers after a while."""
    monkeypatch.setattr(hub, "CONNECT_TIMEOUT_S", 0.2)
    body = b"weights" * 1000
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            time.sleep(0.8)  # longer than the connect timeout
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        path = hub.download_url(f"http://127.0.0.1:{port}/x.pth", tmp_path / "x.pth", progress=False)
    finally:
        worker.join(5)
        server.close()
    assert path.read_bytes() == body


def test_download_errors_stay_one_line(monkeypatch, tmp_path):
    def refuse(url):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused\nsecond line"))

    monkeypatch.setattr(hub, "_open", refuse)
    with pytest.raises(DownloadError) as info:
        hub.download_official("yolox-m", cache_dir=tmp_path, scratch_hint=True)
    message = str(info.value)
    assert "\n" not in message and official_weights_url("yolox-m") in message
    assert "--weights PATH" in message and "--weights none" in message


# ------------------------------------------------------------------------------------ command line


def test_weights_help_names_zoo_names():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("predict", "eval", "export", "serve", "benchmark"):
        [action] = [a for a in commands[command]._actions if "--weights" in a.option_strings]
        assert WEIGHTS_HELP in action.help, command
    [source] = [a for a in commands["convert"]._actions if a.dest == "source"]
    assert WEIGHTS_HELP in source.help


def test_predict_cli_takes_a_name(capsys, dog_jpg):
    code = main(["predict", str(dog_jpg), "--weights", "yolox-nano", "--no-save", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("dog.jpg: "))  # after the model line
    assert "dog" in line and "bicycle" in line


def test_predict_cli_mismatch_is_one_line(capsys, dog_jpg):
    code = main(["predict", str(dog_jpg), "--model", "yolox-s", "--weights", "yolox-nano", "--no-save"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "yolox-s" in err and "yolox-nano" in err


def test_other_commands_take_a_name(capsys, tmp_path):
    out = tmp_path / "nano.pth"
    assert main(["convert", "yolox-nano", str(out)]) == 0, capsys.readouterr().err
    info = describe_weights(out)
    assert (info.model_name, info.num_classes, len(info.names or [])) == ("yolox-nano", 80, 80)
    argv = ["benchmark", "--weights", "yolox-nano", "--size", "160", "--backend", "torch", "--iters", "1",
            "--warmup", "0"]
    assert main(argv) == 0, capsys.readouterr().err
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| yolox-nano")]
    assert len(rows) == 1
    from yoloxkit.cli.serve import build_detector

    served = build_detector(build_parser().parse_args(["serve", "--weights", "yolox-nano"]))
    assert served.model_name == "yolox-nano"
    assert main(["export", "--format", "onnx"]) == 2
    assert "give --model NAME or --weights" in capsys.readouterr().err


def test_export_cli_takes_a_name_without_model(capsys, tmp_path):
    out = tmp_path / "nano.onnx"
    code = main(["export", "--weights", "yolox-nano", "--size", "160", "--no-simplify", "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert describe_weights(out).model_name == "yolox-nano"


def test_predict_cli_offline_fails_fast_with_one_line(tmp_path, dog_jpg):
    """A dead proxy stands in for an offline machine (so this never downloads, even online)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    dead = "http://127.0.0.1:9"
    env.update(YOLOXKIT_HOME=str(tmp_path / "home"), https_proxy=dead, HTTPS_PROXY=dead, OMP_WAIT_POLICY="PASSIVE")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "yoloxkit", "predict", str(dog_jpg), "--model", "yolox-s", "--no-save"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: cannot download ")
    assert official_weights_url("yolox-s") in done.stderr and "--weights PATH" in done.stderr
    assert done.stdout == ""
    assert elapsed < 20, f"offline failure took {elapsed:.1f} s"
    print(f"offline predict --model yolox-s failed in {elapsed:.2f} s")
