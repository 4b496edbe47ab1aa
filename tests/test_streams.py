"""Live stream readers and the multi-stream batch scheduler, with fake captures (no network)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from yoloxkit.errors import ImageReadError
from yoloxkit.infer.stream_set import StreamSet
from yoloxkit.infer.streams import (StreamReader, StreamSettings, check_stream_url, is_stream_url, open_stream,
                                    redact)

URL = "rtsp://admin:s3cret@127.0.0.1:8554/cam"
SHOWN = "rtsp://***@127.0.0.1:8554/cam"


class FakeCapture:
    """A camera: ``frames`` frames (None: endless) ``interval`` s apart; then read() fails, or,
    with ``silent`` (an Event), blocks until it is set (a camera that stops sending)."""

    def __init__(self, frames: int | None = None, interval: float = 0.0, silent: threading.Event | None = None):
        self.frames, self.interval, self.silent = frames, interval, silent
        self.served = 0
        self.calls: list[str] = []
        self.released = False

    def isOpened(self) -> bool:
        return not self.released

    def get(self, prop: int) -> float:
        return {5: 25.0, 3: 6.0, 4: 4.0}.get(prop, 0.0)  # CAP_PROP_FPS, FRAME_WIDTH, FRAME_HEIGHT

    def _advance(self) -> bool:
        if self.frames is not None and self.served >= self.frames:
            if self.silent is not None:
                self.silent.wait(10)
            return False
        if self.interval:
            time.sleep(self.interval)
        self.served += 1
        return True

    def read(self):
        self.calls.append("read")
        ok = self._advance()
        return ok, (np.full((4, 6, 3), self.served % 256, np.uint8) if ok else None)

    def grab(self) -> bool:
        self.calls.append("grab")
        return self._advance()

    def retrieve(self):
        return True, np.full((4, 6, 3), self.served % 256, np.uint8)

    def release(self) -> None:
        self.released = True


class Opener:
    """Hands out ``plan`` in turn (a capture factory, or an exception to raise); the last repeats."""

    def __init__(self, *plan):
        self.plan, self.times, self.captures = list(plan), [], []

    def __call__(self, url: str, settings: StreamSettings):
        self.times.append(time.monotonic())
        item = self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]
        if isinstance(item, BaseException):
            raise item
        self.captures.append(item())
        return self.captures[-1]


def reader(opener, *, lines: list[str] | None = None, **settings) -> StreamReader:
    log = (lambda line: None) if lines is None else lines.append
    return StreamReader(URL, name="cam", settings=StreamSettings(**settings), opener=opener, log=log)


def drain(stream: StreamReader, limit: float = 5.0) -> list:
    frames, deadline = [], time.monotonic() + limit
    while not stream.done and time.monotonic() < deadline:
        frame = stream.next(timeout=0.5)
        if frame is not None:
            frames.append(frame)
    return frames


def refused_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- URLs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["rtsp://h/x", "RTSP://h:554/x", "rtsps://h", "http://h/v.mjpg", "https://h/v",
                                  "rtmp://h/live", URL])
def test_stream_urls_are_recognised_and_checked(text):
    assert is_stream_url(text) and check_stream_url(f" {text} ") == text


@pytest.mark.parametrize("text, message", [
    ("ftp://x", "unsupported stream scheme 'ftp' in ftp://x: use rtsp, rtsps, http, https or rtmp"),
    ("file:///a.mp4", "unsupported stream scheme 'file'"), ("rtsp://", "stream URL without a host: rtsp://"),
    ("rtsp:///path", "without a host"), ("rtsp://u:pw@:554/x", "without a host: rtsp://***@:554/x"),
    ("video.mp4", "not a stream URL: video.mp4"), ("rtsp:/h/x", "not a stream URL")])
def test_wrong_urls_give_one_line(text, message):
    with pytest.raises(ImageReadError) as caught:
        check_stream_url(text)
    assert message in str(caught.value) and "\n" not in str(caught.value) and "pw" not in str(caught.value)


def test_redact_hides_credentials_and_secret_query_values():
    assert redact(URL) == SHOWN
    assert redact("rtsp://user:p@ss@cam/x") == "rtsp://***@cam/x"
    assert redact("rtsp://cam:554/x") == "rtsp://cam:554/x"
    assert redact("http://cam/v.mjpg?user=a&password=hunter2&fps=5") == "http://cam/v.mjpg?user=a&password=***&fps=5"
    assert redact("rtsp://cam/x\nfake line") == "rtsp://cam/x\\nfake line"
    assert redact(f"failed: {URL} (timeout)") == f"failed: {SHOWN} (timeout)"


@pytest.mark.parametrize("bad, name", [({"vid_stride": 0}, "vid_stride"), ({"vid_stride": 1.5}, "vid_stride"),
                                       ({"timeout": 0}, "timeout"), ({"open_timeout": -1}, "open_timeout"),
                                       ({"open_timeout": float("inf")}, "open_timeout"),
                                       ({"backoff": (0, 1)}, "backoff"), ({"backoff": (2, 1)}, "backoff")])
def test_settings_are_checked(bad, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        StreamSettings(**bad)
    assert StreamSettings(timeout=float("inf")).timeout == float("inf")


# --- opening ------------------------------------------------------------------------------------

def test_unreachable_stream_fails_in_start_with_one_quiet_line(capfd):
    url = f"rtsp://admin:s3cret@127.0.0.1:{refused_port()}/cam"
    with pytest.raises(ImageReadError) as caught:
        StreamReader(url, settings=StreamSettings(open_timeout=2)).start()
    message = str(caught.value)
    assert message == f"cannot open stream {redact(url)} (unreachable, or not a video stream)"
    assert "s3cret" not in message and "***@127.0.0.1" in message
    with pytest.raises(ImageReadError, match=r"^cannot open stream rtsp://\*\*\*@127.0.0.1:\d+/cam \(unreachable"):
        open_stream(url, StreamSettings(open_timeout=2))
    print("stderr still works", file=sys.stderr)
    err = capfd.readouterr().err
    assert "stderr still works" in err and "Connection refused" not in err and "WARN" not in err


def test_failing_openers_raise_one_line_without_password():
    class Unopened(FakeCapture):
        def isOpened(self) -> bool:
            return False

    opener = Opener(OSError(f"connect {URL}: no route\nsecond line"))
    with pytest.raises(ImageReadError, match=r"^cannot open stream cam \(rtsp://\*\*\*@127.0.0.1:8554/cam\): "
                                             r"connect rtsp://\*\*\*@127.0.0.1:8554/cam: no route$"):
        reader(opener).start()
    unopened = Opener(Unopened)
    with pytest.raises(ImageReadError, match="unreachable, or not a video stream"):
        reader(unopened).start()
    assert unopened.captures[0].released
    with pytest.raises(RuntimeError, match="start"):
        reader(unopened).next(0)


def test_concurrent_opens_keep_stderr_and_log_lines():
    """Threads opening at once must not leave stderr on /dev/null; log lines pass while muted."""
    code = f"""if True:
        import sys, threading
        from yoloxkit.infer import streams
        def attempt():
            try:
                streams.open_stream("rtsp://127.0.0.1:{refused_port()}/x", streams.StreamSettings(open_timeout=2))
            except Exception as exc:
                assert "cannot open stream" in str(exc)
        for _ in range(3):
            threads = [threading.Thread(target=attempt) for _ in range(8)]
            [t.start() for t in threads]
            with streams._QUIET.section():
                streams._QUIET.write_line("logged while muted")
            [t.join() for t in threads]
        print("stderr still works", file=sys.stderr)
        """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["logged while muted"] * 3 + ["stderr still works"]


# --- one reader ---------------------------------------------------------------------------------

def test_live_mode_returns_the_newest_frame_and_counts_the_dropped():
    with reader(Opener(lambda: FakeCapture(interval=0.002))) as stream:
        assert stream.fps == 25.0 and stream.size == (6, 4)
        numbers, ages = [], []
        for _ in range(8):
            frame = stream.next(timeout=1)
            ages.append(time.monotonic() - frame.received)
            numbers.append(frame.number)
            time.sleep(0.03)  # a slow network
    assert all(b > a + 1 for a, b in zip(numbers, numbers[1:])), numbers
    assert stream.dropped > 8 and max(ages) < 0.1, (stream.dropped, ages)
    leftover = 1 if stream.next(0) is not None else 0
    assert stream.frames_read == len(numbers) + stream.dropped + leftover and stream.done


def test_buffer_mode_returns_every_frame_in_order_and_ends_cleanly():
    stream = reader(Opener(lambda: FakeCapture(frames=50)), buffer=True, reconnect=False).start()
    frames = drain(stream)
    assert [f.number for f in frames] == list(range(1, 51)) and stream.dropped == 0
    assert [int(f.image[0, 0, 0]) for f in frames] == list(range(1, 51))
    assert stream.done and stream.failure is None and stream.next(timeout=None) is None


def test_vid_stride_takes_the_first_of_every_n_and_grabs_the_others():
    opener = Opener(lambda: FakeCapture(frames=10))
    stream = reader(opener, buffer=True, reconnect=False, vid_stride=3).start()
    frames = drain(stream)
    assert [f.number for f in frames] == [1, 4, 7, 10]
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 4, 7, 10]  # the frame decoded is the one numbered
    assert opener.captures[0].calls == ["read", "grab", "grab"] * 3 + ["read", "grab"]  # the last grab fails


def test_reconnect_logs_one_line_each_way_and_numbers_continue():
    lines: list[str] = []
    down = ImageReadError(f"cannot open stream {URL} (unreachable, or not a video stream)")
    opener = Opener(lambda: FakeCapture(frames=5), down, lambda: FakeCapture(frames=0),  # opens, no frame
                    lambda: FakeCapture(interval=0.002))
    with reader(opener, lines=lines, buffer=True, backoff=(0.02, 0.04), timeout=5) as stream:
        numbers = [stream.next(timeout=2).number for _ in range(12)]
    assert numbers == list(range(1, 13))
    assert len(opener.times) == 4 and opener.captures[0].released and opener.captures[1].released
    gaps = [b - a for a, b in zip(opener.times[1:], opener.times[2:])]
    assert gaps[0] >= 0.018 and gaps[1] >= 0.038, gaps  # back-off 0.02 then 0.04 between attempts
    assert len(lines) == 2 and lines[0] == f"stream cam lost ({SHOWN}); reconnecting", lines
    assert lines[1].startswith("stream cam back after ") and lines[1].endswith(" s")
    assert not any("s3cret" in line for line in lines)


def test_gives_up_after_timeout_with_backoff_between_attempts():
    lines: list[str] = []
    opener = Opener(lambda: FakeCapture(frames=2), ImageReadError("cannot open stream x"))
    stream = reader(opener, lines=lines, timeout=0.3, backoff=(0.05, 0.1)).start()
    assert drain(stream)[-1].number == 2  # the newest frame is kept until taken
    lost_at = opener.times[1]
    attempts = len(opener.times) - 1
    assert time.monotonic() - lost_at < 0.7 and stream.done
    message = str(stream.failure)
    assert message == (f"stream cam ({SHOWN}): no frame for 0.3 s, gave up after {attempts} reconnection attempts")
    assert 3 <= attempts <= 4, opener.times
    gaps = [b - a for a, b in zip(opener.times[1:], opener.times[2:])]
    assert all(gap >= wait - 0.005 for gap, wait in zip(gaps, (0.05, 0.1, 0.1))), gaps
    assert stream.ended_at - lost_at >= 0.29
    assert len(lines) == 1 and "lost" in lines[0]  # the failure is the caller's to print


def test_stop_during_backoff_returns_quickly():
    lines: list[str] = []
    opener = Opener(lambda: FakeCapture(frames=1), ImageReadError("down"))
    stream = reader(opener, lines=lines, timeout=60, backoff=(5, 5)).start()
    deadline = time.monotonic() + 2
    while len(opener.times) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # now in the 5 s wait
    began = time.monotonic()
    stream.stop()
    assert time.monotonic() - began < 0.5
    assert not stream._thread.is_alive() and opener.captures[0].released
    assert stream.failure is None and len(opener.times) == 2 and len(lines) == 1
    stream.next(timeout=None)  # returns (None or the one frame) instead of blocking
    assert stream.done and stream.next(timeout=None) is None
    stream.stop()  # idempotent


# --- several streams ----------------------------------------------------------------------------

def collect(streams: StreamSet, seconds: float) -> list[list]:
    batches, deadline = [], time.monotonic() + seconds
    for batch in streams.batches():
        batches.append(batch)
        if time.monotonic() > deadline:
            break
    return batches


def check_batches(batches: list[list], count: int) -> dict[int, list[int]]:
    numbers: dict[int, list[int]] = {index: [] for index in range(count)}
    for batch in batches:
        indices = [index for index, _ in batch]
        assert indices == sorted(set(indices)), indices  # at most once each, in reader order
        for index, frame in batch:
            numbers[index].append(frame.number)
    for got in numbers.values():
        assert got == sorted(set(got))
    return numbers


def test_streams_at_different_rates_and_a_silent_one():
    silent = threading.Event()
    readers = [reader(Opener(lambda: FakeCapture(interval=0.004))), reader(Opener(lambda: FakeCapture(interval=0.04))),
               reader(Opener(lambda: FakeCapture(frames=1, silent=silent)))]
    with StreamSet(readers) as streams:
        numbers = check_batches(collect(streams, 0.5), 3)
        silent.set()
    assert len(numbers[0]) > 3 * len(numbers[1]) >= 15, {k: len(v) for k, v in numbers.items()}
    assert numbers[2] == [1]  # silent after one frame, and it never held the others
    assert all(not r._thread.is_alive() for r in readers)


def test_ready_frames_are_gathered_into_one_batch():
    readers = [reader(Opener(lambda: FakeCapture(frames=5)), buffer=True, reconnect=False) for _ in range(3)]
    streams = StreamSet(readers, max_wait=0.05).start()
    deadline = time.monotonic() + 2
    while not all(r.frames_read == 5 for r in readers) and time.monotonic() < deadline:
        time.sleep(0.01)
    batches = list(streams.batches())
    assert [[(i, f.number) for i, f in batch] for batch in batches] == [[(0, n), (1, n), (2, n)] for n in range(1, 6)]
    assert streams.failures == []


def test_failing_stream_leaves_the_set_while_the_other_finishes():
    lines: list[str] = []
    finite = reader(Opener(lambda: FakeCapture(frames=30, interval=0.005)), buffer=True, reconnect=False)
    failing = reader(Opener(lambda: FakeCapture(frames=3), ImageReadError("down")), lines=lines, timeout=0.15,
                     backoff=(0.02, 0.05))
    with StreamSet([finite, failing]) as streams:
        began = time.monotonic()
        numbers = check_batches(list(streams.batches()), 2)
    assert time.monotonic() - began < 3
    assert numbers[0] == list(range(1, 31)) and numbers[1] and numbers[1][-1] <= 3
    assert streams.failures == [(1, failing.failure)] and "gave up after" in str(failing.failure)
    assert finite.failure is None and len(lines) == 1
