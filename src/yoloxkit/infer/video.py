"""Detection on videos and webcams, frame by frame, with an annotated output video."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from ..errors import ImageReadError, OutputError
from ..io import atomic_path
from .detections import Detections
from .sources import Source

__all__ = ["VideoInfo", "VideoInterrupted", "open_capture", "strided_frames", "read_frames", "video_writer",
           "predict_video"]

DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class VideoInfo:
    """Frame rate, frame size and frame count (None when unknown, e.g. a webcam)."""

    fps: float
    width: int
    height: int
    frames: int | None


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C during a video file: what was done is kept. ``results`` holds one
    :class:`Detections` per frame done, and the annotated video of those frames is complete
    (closed and renamed into place) at ``save_path`` if one was asked for."""

    def __init__(self, results: list[Detections], info: VideoInfo, save_path: str | os.PathLike | None) -> None:
        super().__init__(f"interrupted after {len(results)} frames")
        self.results = results
        self.info = info
        self.save_path = save_path


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what OpenCV and FFmpeg print from native code (they bypass ``sys.stderr``)."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (embedded interpreters)
        saved = None
    try:
        if saved is not None:
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), 2)
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        cv2.utils.logging.setLogLevel(previous)


class _SharedQuiet:
    """Native stderr silenced while any video or stream opens. Reference counted, so threads that open at
    once never leave file descriptor 2 on /dev/null; log lines still reach the real stderr."""

    def __init__(self) -> None:
        self._lock, self._users, self._stack = threading.Lock(), 0, contextlib.ExitStack()
        self._real_fd: int | None = None

    @contextlib.contextmanager
    def section(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                with contextlib.suppress(OSError):  # no file descriptor 2: nothing to keep
                    self._real_fd = os.dup(2)
                    self._stack.callback(os.close, self._real_fd)
                self._stack.enter_context(_quiet_native_stderr())
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._stack.close()  # stderr back first, then the duplicate closed
                    self._real_fd = None

    def write_line(self, line: str) -> None:
        """``line`` on stderr, also while a section has file descriptor 2 on /dev/null."""
        with self._lock:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                if self._real_fd is not None and sys.stderr.fileno() == 2:
                    sys.stderr.flush()
                    os.write(self._real_fd, (line + "\n").encode("utf-8", "replace"))
                    return
        print(line, file=sys.stderr, flush=True)


#: the one way to silence native stderr while opening videos and streams, from any thread
QUIET_NATIVE_STDERR = _SharedQuiet()


def open_capture(source: Source) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open a video file or webcam; :class:`ImageReadError` naming it if that fails."""
    with QUIET_NATIVE_STDERR.section():
        if source.kind == "webcam":
            capture = cv2.VideoCapture(int(source.index))
            what = f"webcam {source.index}"
        else:
            capture = cv2.VideoCapture(str(source.path))
            what = f"video {source.path}"
    if not capture.isOpened():
        capture.release()
        reason = " (no such camera?)" if source.kind == "webcam" else " (not a video file or an unsupported codec)"
        raise ImageReadError(f"cannot open {what}{reason}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    info = VideoInfo(
        fps=float(fps) if fps and 0 < fps < 1000 else DEFAULT_FPS,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        frames=frames if source.kind != "webcam" and frames > 0 else None,
    )
    return capture, info


def strided_frames(capture: cv2.VideoCapture, stride: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, BGR frame)`` of every ``stride``-th frame until the capture ends: indices 0,
    ``stride``, ``2 * stride``, ... of the source; the frames between are grabbed, not decoded."""
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield index, frame
        for _ in range(stride - 1):
            index += 1
            if not capture.grab():
                return
        index += 1


def read_frames(capture: cv2.VideoCapture, batch_size: int, stride: int = 1) -> Iterator[list[np.ndarray]]:
    """Yield lists of up to ``batch_size`` BGR frames (every ``stride``-th) until the capture ends."""
    batch: list[np.ndarray] = []
    for _, frame in strided_frames(capture, stride):
        batch.append(frame)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def video_writer(path: str | os.PathLike, fps: float, size: tuple[int, int]) -> Iterator[cv2.VideoWriter]:
    """An mp4v ``cv2.VideoWriter`` for frames of ``size`` ``(w, h)`` writing atomically to ``path``."""
    with atomic_path(path, what="video") as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise ImageReadError(f"cannot write video {path} (OpenCV has no mp4v encoder?)")
        try:
            yield writer
        finally:
            writer.release()


def _open_writer(stack: contextlib.ExitStack, save_path: str | os.PathLike | None, info: VideoInfo,
                 on_save_error: Callable[[OutputError], None] | None) -> cv2.VideoWriter | None:
    """The video writer of ``save_path`` entered on ``stack``; None without ``save_path``, or when
    it cannot be written and ``on_save_error`` takes the :class:`OutputError`."""
    if save_path is None:
        return None
    try:
        return stack.enter_context(video_writer(save_path, info.fps, (info.width, info.height)))
    except OutputError as exc:
        if on_save_error is None:
            raise
        on_save_error(exc)
        return None


def predict_video(
    predict: Callable[[list[np.ndarray]], list[Detections]],
    source: Source,
    save_path: str | os.PathLike | None = None,
    batch_size: int = 1,
    progress: bool = True,
    on_save_error: Callable[[OutputError], None] | None = None,
    vid_stride: int = 1,
) -> tuple[list[Detections], VideoInfo]:
    """Run ``predict`` (e.g. ``detector.predict_arrays``) on every frame of a video or webcam.

    Writes the annotated video to ``save_path`` (atomically) if given. Returns one
    :class:`Detections` per frame (without the frame pixels) and the video's info. A webcam
    runs until it stops delivering frames or Ctrl-C; the video written so far is kept. Ctrl-C
    during a video file also keeps what was done: the annotated video of the frames done is
    closed and renamed into place, then :class:`VideoInterrupted` carries their results. When the
    annotated video cannot be written (:class:`OutputError`), ``on_save_error`` (if given) gets
    the error and the frames still run: their results are returned. ``vid_stride`` N takes every
    Nth frame (0, N, 2N, ...); the video then plays at the frame rate divided by N, and the
    returned info is that of the frames taken.
    """
    from tqdm import tqdm

    capture, info = open_capture(source)
    if vid_stride > 1:
        taken = None if info.frames is None else -(-info.frames // vid_stride)
        info = VideoInfo(fps=info.fps / vid_stride, width=info.width, height=info.height, frames=taken)
    results: list[Detections] = []
    interrupted = False
    try:
        with contextlib.ExitStack() as stack:
            writer = _open_writer(stack, save_path, info, on_save_error)
            bar = stack.enter_context(
                tqdm(total=info.frames, desc=source.name, unit="frame", disable=not progress, leave=False)
            )
            try:
                for frames in read_frames(capture, max(1, batch_size), max(1, vid_stride)):
                    detections = predict(frames)
                    for frame, det in zip(frames, detections):
                        if writer is not None:
                            annotated = det.plot(frame)
                            if annotated.shape[1::-1] != (info.width, info.height):
                                annotated = cv2.resize(annotated, (info.width, info.height))
                            writer.write(annotated)
                        det.source = None  # do not keep every frame in memory
                        det.image = source.name
                        results.append(det)  # frame by frame: the results match the frames written
                    bar.update(len(frames))
            except KeyboardInterrupt:
                interrupted = source.kind != "webcam"  # Ctrl-C is how a webcam run ends
    except OutputError as exc:  # the finished video could not be put in place
        if on_save_error is None:
            raise
        on_save_error(exc)
    finally:
        capture.release()
    if interrupted:
        raise VideoInterrupted(results, info, save_path)
    return results, info
