"""``predict`` and ``track`` on real live streams: the test-owned RTSP (RTP/JPEG over TCP) and
MJPEG-over-HTTP servers of tests/stream_servers.py on 127.0.0.1 send the same JPEG bytes as an
MJPEG AVI file, so every frame kept must give the file's detections and tracks exactly. A server
killed and restarted is reconnected; one that never returns is given up in one line while the
other stream finishes; bad URLs and garbage streams are one line and exit 2. Nano at 256."""

from __future__ import annotations

import functools
import json
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest

from tests.stream_servers import MjpegServer, RtspServer, make_clip, write_mjpeg_clip
from yoloxkit import Detector, Tracker
from yoloxkit.cli import main
from yoloxkit.infer.stream_run import watch_streams
from yoloxkit.infer.stream_urls import stream_name
from yoloxkit.infer.streams import StreamSettings
from yoloxkit.tracking import read_mot

SIZE = "256"
FRAMES = 16


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[bytes]]:
    """A 16-frame MJPEG AVI of the demo picture panning, and its JPEG bytes for the servers."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    return path, write_mjpeg_clip(path, make_clip(FRAMES), fps=30)


def _records(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def _when(condition, then, timeout: float = 20.0) -> threading.Thread:
    """Run ``then()`` in a thread as soon as ``condition()`` holds."""
    def wait() -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def test_predict_on_rtsp_and_mjpeg_streams_matches_the_file_frame_for_frame(clip, tmp_path: Path, capsys) -> None:
    avi, jpegs = clip
    assert main(["predict", str(avi), "--size", SIZE, "--json-out", str(tmp_path / "file.json"), "--no-save",
                 "--no-progress"]) == 0
    from_file = _records(tmp_path / "file.json")
    with RtspServer(jpegs, fps=30, loop=True) as rtsp, MjpegServer(jpegs, fps=30, loop=True) as mjpeg:
        code = main(["predict", rtsp.url, mjpeg.url, "--size", SIZE, "--stream-buffer", "--max-frames", str(FRAMES),
                     "--json-out", str(tmp_path / "streams.json"), "--save-dir", str(tmp_path / "videos"),
                     "--no-progress"])
        names = [stream_name(rtsp.url), stream_name(mjpeg.url)]
    out = capsys.readouterr().out
    assert code == 0, out
    records = _records(tmp_path / "streams.json")
    for name in names:
        mine = [r for r in records if r["image"] == name]
        assert [r["frame"] for r in mine] == [r["frame"] for r in from_file] == list(range(FRAMES))
        assert [r["detections"] for r in mine] == [r["detections"] for r in from_file]
        assert f"{name}: {FRAMES} frames" in out
        video = cv2.VideoCapture(str(tmp_path / "videos" / f"{name}.mp4"))
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES


def test_track_on_two_streams_batched_matches_the_file(clip, tmp_path: Path, capsys) -> None:
    avi, jpegs = clip
    common = ["--size", SIZE, "--tracker", "iou", "--count-line", "128,0,128,240", "--no-save", "--no-progress"]
    assert main(["track", str(avi), "--mot-out", str(tmp_path / "file.txt"), *common]) == 0
    expected = read_mot(tmp_path / "file.txt")
    assert len(expected.ids) > FRAMES  # the clip has objects to track
    with RtspServer(jpegs, fps=30, loop=True) as rtsp, MjpegServer(jpegs, fps=30, loop=True) as mjpeg:
        code = main(["track", rtsp.url, mjpeg.url, "--stream-buffer", "--max-frames", str(FRAMES), "--mot-out",
                     str(tmp_path / "mot"), "--json-out", str(tmp_path / "frames.json"), *common])
        names = [stream_name(rtsp.url), stream_name(mjpeg.url)]
    assert code == 0, capsys.readouterr().err
    for name in names:  # each stream its own tracker: the file's tracks exactly
        rows = read_mot(tmp_path / "mot" / f"{name}.txt")
        assert rows.frames.tolist() == expected.frames.tolist() and rows.ids.tolist() == expected.ids.tolist()
        assert (rows.boxes == expected.boxes).all()
    records = _records(tmp_path / "frames.json")
    assert sorted({r["image"] for r in records}) == sorted(names)
    assert all("line_count" in r for r in records)


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        pass


def test_a_recorded_video_over_http_is_read_like_a_file(clip, tmp_path: Path, capsys) -> None:
    avi, _ = clip
    assert main(["predict", str(avi), "--size", SIZE, "--json-out", str(tmp_path / "file.json"), "--no-save",
                 "--no-progress"]) == 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(avi.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:  # every frame, to its end, without --max-frames or --stream-buffer
        url = f"http://127.0.0.1:{server.server_address[1]}/{avi.name}"
        code = main(["predict", url, "--size", SIZE, "--json-out", str(tmp_path / "http.json"), "--no-save",
                     "--no-progress"])
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, capsys.readouterr().err
    from_file, over_http = _records(tmp_path / "file.json"), _records(tmp_path / "http.json")
    assert [r["detections"] for r in over_http] == [r["detections"] for r in from_file]
    assert len(over_http) == FRAMES


def test_python_api_over_a_stream(clip) -> None:
    _, jpegs = clip
    detector = Detector(size=int(SIZE))
    with MjpegServer(jpegs, fps=60, loop=True) as server:
        tracked = []
        for result in Tracker(detector, "iou").track(server.url):  # live mode
            tracked.append(result)
            if len(tracked) == 5:
                break  # closing the generator stops the reader
        seen = list(watch_streams(detector, [server.url], StreamSettings(buffer=True), max_frames=4))
    assert len(tracked) == 5 and all(r.track_ids is not None for r in tracked)
    assert [frame.number for _, frame, _ in seen] == [1, 2, 3, 4]
    assert all(name == stream_name(server.url) and len(det) > 0 for name, _, det in seen)


def test_a_killed_server_that_comes_back_is_reconnected(clip, tmp_path: Path, capfd) -> None:
    _, jpegs = clip
    with RtspServer(jpegs, fps=30, loop=True) as server:
        def restart() -> None:
            server.stop()
            time.sleep(1.0)
            server.start()

        _when(lambda: server.frames_sent >= 20, restart)
        code = main(["predict", server.url, "--size", SIZE, "--stream-buffer", "--max-frames", "60",
                     "--stream-timeout", "20", "--json-out", str(tmp_path / "frames.json"), "--no-save",
                     "--no-progress"])
    err = capfd.readouterr().err
    assert code == 0, err
    assert err.count("lost (") == 1 and err.count("back after") == 1  # once per outage, not per attempt
    numbers = [r["frame"] for r in _records(tmp_path / "frames.json")]
    assert len(numbers) == 60 and numbers == sorted(numbers)  # numbering goes on across the reconnection


def test_a_stream_that_never_returns_is_given_up_while_the_other_finishes(clip, tmp_path: Path, capfd) -> None:
    _, jpegs = clip
    with RtspServer(jpegs, fps=30, loop=True) as dying, MjpegServer(jpegs, fps=30, loop=True) as healthy:
        _when(lambda: dying.frames_sent >= 10, dying.stop)
        code = main(["predict", dying.url, healthy.url, "--size", SIZE, "--max-frames", "90", "--stream-buffer",
                     "--stream-timeout", "1.5", "--json-out", str(tmp_path / "frames.json"), "--save-dir",
                     str(tmp_path / "videos"), "--no-progress"])
        dead, alive = stream_name(dying.url), stream_name(healthy.url)
    err = capfd.readouterr().err
    assert code == 2
    gave_up = [line for line in err.splitlines() if "gave up" in line]
    assert len(gave_up) == 1 and dead in gave_up[0] and "no frame for 1.5 s" in gave_up[0]
    records = _records(tmp_path / "frames.json")
    assert len([r for r in records if r["image"] == alive and "error" not in r]) == 90
    assert [r for r in records if r["image"] == dead and "error" in r]
    assert (tmp_path / "videos" / f"{alive}.mp4").is_file() and (tmp_path / "videos" / f"{dead}.mp4").is_file()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _one_error_line(code: int, err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("command", ["predict", "track"])
def test_unreachable_url_and_wrong_scheme_are_one_line(command: str, capfd) -> None:
    url = f"rtsp://127.0.0.1:{_closed_port()}/cam"
    code = main([command, url, "--stream-timeout", "3", "--no-save", "--no-progress"])
    line = _one_error_line(code, capfd.readouterr().err)
    assert f"cannot open stream {stream_name(url)} ({url}) (unreachable" in line
    code = main([command, "ftp://127.0.0.1/cam", "--no-save", "--no-progress"])
    assert "unsupported stream scheme 'ftp'" in _one_error_line(code, capfd.readouterr().err)


def test_a_garbage_stream_fails_alone(clip, tmp_path: Path, capfd) -> None:
    _, jpegs = clip
    with MjpegServer(jpegs, fps=30, garbage=True) as garbage, MjpegServer(jpegs, fps=30, loop=True) as good:
        code = main(["predict", garbage.url, good.url, "--size", SIZE, "--max-frames", "8", "--stream-buffer",
                     "--stream-timeout", "2", "--json-out", str(tmp_path / "frames.json"), "--no-save",
                     "--no-progress"])
        bad, fine = stream_name(garbage.url), stream_name(good.url)
    err = capfd.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == f"error: 1 of 2 sources could not be read ({bad})"
    assert len([line for line in err.splitlines() if bad in line and "warning" in line]) == 1
    records = _records(tmp_path / "frames.json")
    assert len([r for r in records if r["image"] == fine]) == 8


def test_vid_stride_takes_every_nth_frame_of_a_file(clip, tmp_path: Path, capsys) -> None:
    avi, _ = clip
    assert main(["predict", str(avi), "--size", SIZE, "--json-out", str(tmp_path / "all.json"), "--no-save",
                 "--no-progress"]) == 0
    assert main(["predict", str(avi), "--size", SIZE, "--vid-stride", "3", "--json-out", str(tmp_path / "some.json"),
                 "--save-dir", str(tmp_path / "v"), "--no-progress"]) == 0
    every, some = _records(tmp_path / "all.json"), _records(tmp_path / "some.json")
    assert [r["frame"] for r in some] == list(range(0, FRAMES, 3))
    assert [r["detections"] for r in some] == [every[f]["detections"] for f in range(0, FRAMES, 3)]
    video = cv2.VideoCapture(str(tmp_path / "v" / "clip.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(some) and video.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    assert main(["track", str(avi), "--size", SIZE, "--vid-stride", "3", "--mot-out", str(tmp_path / "s.txt"),
                 "--no-save", "--no-progress"]) == 0
    assert set(read_mot(tmp_path / "s.txt").frames.tolist()) <= set(range(1, FRAMES + 1, 3))
    assert f"clip: {len(range(0, FRAMES, 3))} frames," in capsys.readouterr().out  # frames done, not the last number


@pytest.mark.parametrize("command", ["predict", "track"])
def test_ctrl_c_on_streams_keeps_playable_videos_and_the_records(command: str, clip, tmp_path: Path, monkeypatch,
                                                                  capsys) -> None:
    _, jpegs = clip
    calls = {"n": 0}
    real = Detector.predict_arrays

    def predict_arrays(self, arrays, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(self, arrays, *args, **kwargs)

    monkeypatch.setattr(Detector, "predict_arrays", predict_arrays)
    with MjpegServer(jpegs, fps=60, loop=True) as server:
        code = main([command, server.url, "--size", SIZE, "--stream-buffer", "--json-out", str(tmp_path / "f.json"),
                     "--save-dir", str(tmp_path / "videos"), "--no-progress"])
        name = stream_name(server.url)
    assert code == 130, capsys.readouterr().err
    records = _records(tmp_path / "f.json")
    assert len(records) == 5 and {r["image"] for r in records} == {name}
    video = cv2.VideoCapture(str(tmp_path / "videos" / f"{name}.mp4"))
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames == 5
    assert not [p.name for p in (tmp_path / "videos").iterdir() if p.name.startswith(".")]  # no temporary files
