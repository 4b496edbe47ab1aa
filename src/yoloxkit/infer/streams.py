"""Live video streams (rtsp, http MJPEG...), each read by its own thread that keeps the newest frame
(or every frame), so latency does not grow when inference is slower than the camera. A stream that
drops is reopened with back-off; an outage is logged once when it begins and once when it ends."""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
from dataclasses import dataclass, replace
from urllib.parse import urlsplit
from typing import Any, Callable, Union

import cv2
import numpy as np

from ..errors import ImageReadError, InferenceError, first_line
from .sources import is_video_file
from .stream_urls import STREAM_SCHEMES, check_stream_url, is_stream_url, redact
from .video import DEFAULT_FPS, QUIET_NATIVE_STDERR as _QUIET

__all__ = ["STREAM_SCHEMES", "StreamFrame", "StreamReader", "StreamSettings", "check_stream_url", "is_stream_url",
           "open_stream", "redact", "settings_for"]

STOP_JOIN_TIMEOUT = 2.0  # s that StreamReader.stop waits for its thread (one in a native read ends later)
Hook = Union[threading.Event, threading.Condition]


def _seconds(value: Any, finite: bool = True) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    return number and value > 0 and (math.isfinite(value) or not finite)


@dataclass(frozen=True)
class StreamSettings:
    """Every frame (``buffer``) or the newest only; every ``vid_stride``-th source frame; give up
    after ``timeout`` s without a frame (``inf``: never); FFmpeg's open/read timeout of one attempt
    (``open_timeout`` s); wait ``backoff`` (first, largest) s between reconnection attempts,
    doubling; ``reconnect=False``: the first failed read ends the stream cleanly."""

    buffer: bool = False
    vid_stride: int = 1
    timeout: float = 30.0
    open_timeout: float = 10.0
    backoff: tuple[float, float] = (0.5, 8.0)
    reconnect: bool = True

    def __post_init__(self) -> None:
        stride, pair = self.vid_stride, self.backoff
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise InferenceError(f"vid_stride must be an integer >= 1, got {stride!r}")
        for name, finite in (("timeout", False), ("open_timeout", True)):
            if not _seconds(getattr(self, name), finite):
                raise InferenceError(f"{name} must be a number of seconds > 0, got {getattr(self, name)!r}")
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and _seconds(pair[0]) and _seconds(pair[1])
                and pair[0] <= pair[1]):
            raise InferenceError(f"backoff must be (first, largest) seconds with 0 < first <= largest, got {pair!r}")


def settings_for(url: str, settings: StreamSettings) -> StreamSettings:
    """The settings of one URL: a recorded video served over the network (its path ends in a
    video suffix, ``http://host/clip.mp4``) is read like a file, every frame to its end and no
    reconnection; a live stream keeps ``settings``."""
    if is_video_file(urlsplit(url).path):
        return replace(settings, buffer=True, reconnect=False)
    return settings


@dataclass(frozen=True)
class StreamFrame:
    """One frame of a stream: its 1-based number in the source (every frame counted, skipped
    ones and reconnections included), the BGR image and ``time.monotonic()`` when it was read."""

    number: int
    image: np.ndarray
    received: float


def open_stream(url: str, settings: StreamSettings) -> cv2.VideoCapture:
    """``url`` opened by OpenCV's FFmpeg backend with ``settings.open_timeout`` as its open and
    read timeout, FFmpeg's messages silenced; a one-line :class:`ImageReadError` if it fails."""
    milliseconds = max(1, round(settings.open_timeout * 1000))
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds, cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds]
    with _QUIET.section(), contextlib.suppress(cv2.error):
        capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if capture.isOpened():
            return capture
        capture.release()
    raise ImageReadError(f"cannot open stream {redact(url)} (unreachable, or not a video stream)")


@dataclass
class _Outage:
    began: float
    wait: float
    attempts: int = 0


class StreamReader:
    """One stream read by its own daemon thread. ``opener(url, settings)`` returns an opened
    capture (``read``, ``grab``, ``release``, ``isOpened``, ``get``); ``log`` gets the outage lines;
    ``notify`` (an Event is set, a Condition notified) hears of new frames and of the end. After
    :meth:`start`: ``fps`` (30 when unknown), ``size`` ``(w, h)`` (``(0, 0)`` until known).
    ``frames_read``: frames decoded; ``dropped``: those replaced unreturned in live mode."""

    def __init__(self, url: str, name: str | None = None, settings: StreamSettings = StreamSettings(),
                 opener: Callable[[str, StreamSettings], Any] = open_stream,
                 log: Callable[[str], None] = _QUIET.write_line, notify: Hook | None = None) -> None:
        self.url = check_stream_url(url)
        self.shown_url = redact(self.url)
        self.name = name or self.shown_url
        self.settings = settings
        self._where = "" if self.name == self.shown_url else f" ({self.shown_url})"  # after the name
        self._opener, self._log = opener, log
        self.hooks: list[Hook] = [notify] if notify is not None else []  # told of new frames and the end
        self._cond, self._halt = threading.Condition(), threading.Event()
        self._frames: collections.deque[StreamFrame] = collections.deque()
        self._thread: threading.Thread | None = None
        self._capture: Any = None
        self._ended = False
        self.failure: ImageReadError | None = None
        self.ended_at: float | None = None  # time.monotonic() when it ended (stop, failure or clean end)
        self.dropped = self.frames_read = self._source_frames = 0
        self.fps, self.size = DEFAULT_FPS, (0, 0)

    def start(self) -> StreamReader:
        """Open the stream (here, synchronously: :class:`ImageReadError` if it cannot be opened)
        and start the reader thread. Returns ``self``; a second call does nothing."""
        if self._thread is not None:
            return self
        self._capture = capture = self._open()
        with contextlib.suppress(Exception):  # a capture without properties keeps the defaults
            fps = float(capture.get(cv2.CAP_PROP_FPS) or 0)
            self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS
            width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            self.size = (width, height) if width > 0 and height > 0 else (0, 0)
        self._thread = threading.Thread(target=self._run, name=f"yoloxkit-stream-{self.name}", daemon=True)
        self._thread.start()
        return self

    def next(self, timeout: float | None = None) -> StreamFrame | None:
        """Live mode: the newest frame not yet returned; buffer mode: the oldest. Waits up to ``timeout``
        s (None: until a frame or the end); None when none came in time or the stream is :attr:`done`."""
        if self._thread is None:
            raise RuntimeError(f"stream {self.name}: call start() before next()")
        with self._cond:
            self._cond.wait_for(lambda: self._frames or self._ended, timeout)
            return self._frames.popleft() if self._frames else None

    @property
    def done(self) -> bool:
        """Ended (stop, failure, or a failed read with ``reconnect=False``) and nothing left to return."""
        with self._cond:
            return self._ended and not self._frames

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        """End the stream; the thread (joined up to ``timeout`` s) releases the capture. Idempotent."""
        self._halt.set()
        self._end(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and timeout > 0:
            thread.join(timeout)

    def __enter__(self) -> StreamReader:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _scrub(self, text: str) -> str:
        return redact(text.replace(self.url, self.shown_url))

    def _open(self) -> Any:
        """The opener's capture; :class:`ImageReadError` (one line, no password) if it fails."""
        try:
            capture = self._opener(self.url, self.settings)
        except ImageReadError:  # open_stream's: said again with the stream's name
            raise ImageReadError(f"cannot open stream {self.name}{self._where} (unreachable, or not a video "
                                 "stream)") from None
        except Exception as exc:  # cv2.error, OSError...: the same one-line error
            reason = self._scrub(first_line(exc))
            raise ImageReadError(f"cannot open stream {self.name}{self._where}: {reason}") from None
        if capture is not None and capture.isOpened():
            return capture
        with contextlib.suppress(Exception):  # None, or a capture that fails to close
            capture.release()
        raise ImageReadError(f"cannot open stream {self.name}{self._where} (unreachable, or not a video stream)")

    def _run(self) -> None:
        failure = ImageReadError(f"stream {self.name}{self._where}: reader stopped")  # kept if _loop raises
        try:
            failure = self._loop()
        finally:
            self._release()
            self._end(failure)

    def _loop(self) -> ImageReadError | None:
        """Read until stopped; reconnect after a failed read. The failure once given up."""
        last_frame = time.monotonic()
        outage: _Outage | None = None
        while not self._halt.is_set():
            if self._capture is not None:
                if self._step(self._capture):
                    last_frame = time.monotonic()
                    if outage is not None:
                        self._log(f"stream {self.name} back after {last_frame - outage.began:.1f} s")
                        outage = None
                    continue
                self._release()
                if not self.settings.reconnect:
                    return None
                if outage is None:
                    outage = _Outage(time.monotonic(), self.settings.backoff[0])
                    self._log(f"stream {self.name} lost{self._where}; reconnecting")
            failure = self._reopen(outage, last_frame)
            if failure is not None:
                return failure
        return None

    def _reopen(self, outage: _Outage, last_frame: float) -> ImageReadError | None:
        """One attempt, after the back-off wait unless the first; the failure once timed out."""
        timeout = self.settings.timeout
        if outage.attempts:
            remaining = last_frame + timeout - time.monotonic()
            if self._halt.wait(max(0.0, min(outage.wait, remaining))):
                return None
            outage.wait = min(outage.wait * 2, self.settings.backoff[1])
        if time.monotonic() - last_frame >= timeout:
            return ImageReadError(f"stream {self.name}{self._where}: no frame for {timeout:g} s, "
                                  f"gave up after {outage.attempts} reconnection attempts")
        outage.attempts += 1
        with contextlib.suppress(ImageReadError):
            self._capture = self._open()
        return None

    def _step(self, capture: Any) -> bool:
        """Read (or, between strided frames, grab) one source frame; False when that fails."""
        number = self._source_frames + 1
        decode = (number - 1) % self.settings.vid_stride == 0
        try:
            ok, image = capture.read() if decode else (capture.grab(), None)
        except Exception:  # cv2.error from a broken stream: the same as a failed read
            return False
        if not ok or (decode and (image is None or not getattr(image, "size", 0))):
            return False
        self._source_frames = number
        if decode:
            self._publish(StreamFrame(number, image, time.monotonic()))
        return True

    def _publish(self, frame: StreamFrame) -> None:
        with self._cond:
            if self._ended:
                return
            if not self.settings.buffer and self._frames:
                self.dropped += len(self._frames)
                self._frames.clear()
            self._frames.append(frame)
            self.frames_read += 1
            if self.size == (0, 0) and frame.image.ndim >= 2:
                self.size = (int(frame.image.shape[1]), int(frame.image.shape[0]))
            self._cond.notify_all()
        self._poke()

    def _end(self, failure: ImageReadError | None) -> None:
        with self._cond:
            if self._ended:
                return
            self.failure, self._ended, self.ended_at = failure, True, time.monotonic()
            self._cond.notify_all()
        self._poke()

    def _release(self) -> None:
        capture, self._capture = self._capture, None
        with contextlib.suppress(Exception):  # None, or a capture that fails to close
            capture.release()

    def _poke(self) -> None:
        for hook in list(self.hooks):
            if isinstance(hook, threading.Event):
                hook.set()
            else:
                with hook:
                    hook.notify_all()
