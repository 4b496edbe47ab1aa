"""What ``track`` reads: a video file, a webcam, a folder of frames or a live stream, as one sequence.

A folder holds the frames as images, in name order (those of its ``img1/`` if it has one); a
MOTChallenge sequence folder gives the frames and the frame rate its ``seqinfo.ini`` names. Every problem is
an :class:`ImageReadError` naming the source: a missing path, a file that is not a video, a
video that cannot be decoded, a webcam index with no camera, a folder without images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..data.mot_sequence import read_seqinfo, sequence_frames
from ..errors import ImageReadError
from ..imaging import is_image_file, read_image
from ..infer.sources import Source, is_video_file
from ..infer.stream_urls import check_stream_url, stream_name
from ..infer.streams import StreamReader, StreamSettings, settings_for
from ..infer.video import DEFAULT_FPS, open_capture, strided_frames

__all__ = ["FrameSource", "open_frames"]


@dataclass
class FrameSource:
    """One sequence of frames. Iterate for ``(frame_number, BGR array)`` pairs (1-based); an
    unreadable frame of a folder is yielded as its :class:`ImageReadError` in its place."""

    name: str
    kind: str  # "video", "webcam", "frames" or "stream"
    fps: float
    length: int | None  # frames, None when unknown (a webcam)
    size: tuple[int, int]  # (width, height) of the first frame
    source: Source | None = None
    files: list[Path] | None = None
    stride: int = 1  # every stride-th frame is taken (numbers 1, 1 + stride, ...); fps and length are of those
    url: str | None = None  # a live stream's, read with stream_settings (live mode: the newest frame)
    stream_settings: StreamSettings | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | ImageReadError]]:
        if self.url is not None:
            yield from self._stream()
            return
        if self.files is not None:
            for index in range(0, len(self.files), self.stride):
                try:
                    yield index + 1, read_image(self.files[index])
                except ImageReadError as exc:
                    yield index + 1, exc
            return
        capture, _ = open_capture(self.source)
        try:
            for index, frame in strided_frames(capture, self.stride):
                yield index + 1, frame
        finally:
            capture.release()

    def _stream(self) -> Iterator[tuple[int, np.ndarray]]:
        """The stream's frames until it is given up (its :class:`ImageReadError` is raised) or
        the caller stops; numbers are the stream's."""
        settings = settings_for(self.url, self.stream_settings or StreamSettings(vid_stride=self.stride))
        with StreamReader(self.url, self.name, settings) as reader:
            while True:
                frame = reader.next()
                if frame is None:
                    if reader.failure is not None:
                        raise reader.failure
                    return
                yield frame.number, frame.image

    def strided(self, stride: int) -> FrameSource:
        """These frames taking every ``stride``-th (``--vid-stride``): the frame rate and length
        are those of the frames taken, the frame numbers those of the source."""
        if stride < 1:
            raise ImageReadError(f"the frame stride must be at least 1, got {stride}")
        if stride == 1:
            return self
        length = None if self.length is None else -(-self.length // stride)
        return replace(self, fps=self.fps / stride, length=length, stride=stride)


def _frame_folder(folder: Path, fps: float | None) -> FrameSource:
    """A MOTChallenge sequence folder (its ``seqinfo.ini`` names the frames and the frame rate),
    a folder with ``img1/``, or any folder of images."""
    if (folder / "seqinfo.ini").is_file():
        files, rate, where = sequence_frames(folder), read_seqinfo(folder)["frame_rate"], folder
    else:
        where = folder / "img1" if (folder / "img1").is_dir() else folder
        files, rate = sorted(p for p in where.iterdir() if p.is_file() and is_image_file(p)), None
    if not files:
        raise ImageReadError(f"no image frames in folder {where}")
    first = read_image(files[0])
    return FrameSource(folder.name, "frames", fps or rate or DEFAULT_FPS, len(files), (first.shape[1], first.shape[0]),
                       files=files)


def open_frames(argument: str | os.PathLike | int, fps: float | None = None) -> FrameSource:
    """The frames of ``argument``: a video file, a webcam index (an int or a digit string that is
    not a file), a folder of frames or a live stream URL (read in live mode: the newest frame).
    ``fps`` overrides the frame rate (a folder's default: its ``seqinfo.ini``, else 30). The
    video, camera or stream is opened here, so a bad one fails at once."""
    text = str(argument)
    if "://" in text:
        return _stream_source(check_stream_url(text), fps)
    path = Path(text).expanduser()
    if isinstance(argument, int) or (text.isdigit() and not path.exists()):
        source = Source("webcam", index=int(text))
    elif path.is_dir():
        return _frame_folder(path, fps)
    elif not path.exists():
        raise ImageReadError(f"source not found: {path}")
    elif not path.is_file():
        raise ImageReadError(f"not a video file, a folder of frames or a webcam index: {path}")
    elif not is_video_file(path):
        what = "an image" if is_image_file(path) else "not a video file"
        raise ImageReadError(f"cannot track {path}: {what} (give a video file, a folder of frames or a webcam index)")
    else:
        source = Source("video", path)
    capture, info = open_capture(source)
    try:
        if source.kind == "video":
            ok, _ = capture.read()
            if not ok:
                raise ImageReadError(f"cannot read a frame of video {path} (empty, truncated or an unsupported codec)")
    finally:
        capture.release()
    return FrameSource(path.stem if source.kind == "video" else f"webcam{source.index}", source.kind,
                       fps or info.fps, info.frames, (info.width, info.height), source=source)


def _stream_source(url: str, fps: float | None) -> FrameSource:
    """A live stream, opened once here to fail at once and to learn its frame rate and size."""
    settings, name = settings_for(url, StreamSettings()), stream_name(url)
    with StreamReader(url, name, settings) as reader:
        first = reader.next(timeout=settings.open_timeout)
        if first is None:
            raise reader.failure or ImageReadError(f"stream {reader.shown_url}: no frame within "
                                                   f"{settings.open_timeout:g} s of opening it")
        rate = reader.fps
    size = (first.image.shape[1], first.image.shape[0])
    return FrameSource(name, "stream", fps or rate, None, size, url=url)


def frame_size(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` resized to ``size`` ``(w, h)`` when it differs (a folder's frames may vary)."""
    return frame if frame.shape[1::-1] == tuple(size) else cv2.resize(frame, tuple(size))
