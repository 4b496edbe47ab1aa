"""Detection on live streams: each stream read by its own thread (:class:`~.streams.StreamReader`),
the newest frames of all of them batched through the network together (:class:`~.stream_set.StreamSet`),
and ``predict``'s per-stream outputs: an annotated video and one JSON record per frame.

A stream that cannot be opened, or that is given up after its timeout, costs only itself: the
others go on, and the run records its error. Ctrl-C closes every video (playable, renamed into
place) and keeps the records of the frames done.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

from ..errors import ImageReadError, OutputError
from .detections import Detections
from .detector import Detector
from .sources import Source
from .stream_set import StreamSet
from .stream_urls import check_stream_url
from .streams import StreamFrame, StreamReader, StreamSettings, settings_for
from .video import video_writer

__all__ = ["start_streams", "detect_streams", "watch_streams", "LazyVideo", "predict_streams"]


def start_streams(sources: Sequence[Source], settings: StreamSettings,
                  on_error: Callable[[Source, ImageReadError], None]) -> list[tuple[Source, StreamReader]]:
    """A started reader per stream source, in order; a stream that cannot be opened goes to
    ``on_error`` (which may raise to stop: the streams opened are then stopped) and the others
    are still opened."""
    started: list[tuple[Source, StreamReader]] = []
    try:
        for source in sources:
            try:
                reader = StreamReader(source.url, source.name, settings_for(source.url, settings))
                started.append((source, reader.start()))
            except ImageReadError as exc:
                on_error(source, exc)
    except BaseException:
        for _, reader in started:
            reader.stop()
        raise
    return started


def detect_streams(detector: Detector, streams: StreamSet, classes: Sequence[int | str] | None = None,
                   max_frames: int | None = None) -> Iterator[list[tuple[int, StreamFrame, Detections]]]:
    """Detect in batches of the streams' newest frames: ``(stream index, frame, detections)``
    per stream that had a frame, one network call per batch. A stream ends after ``max_frames``
    frames (None: when it is stopped or given up); the iterator ends when every stream has."""
    done = [0] * len(streams.readers)
    for batch in streams.batches():
        if max_frames is not None:
            batch = [(index, frame) for index, frame in batch if done[index] < max_frames]
        if not batch:
            continue
        found = detector.predict_arrays([frame.image for _, frame in batch], classes=classes)
        for index, _ in batch:
            done[index] += 1
            if max_frames is not None and done[index] >= max_frames:
                streams.readers[index].stop(timeout=0)
        yield [(index, frame, det) for (index, frame), det in zip(batch, found)]


def watch_streams(detector: Detector, urls: Sequence[str], settings: StreamSettings | None = None,
                  classes: Sequence[int | str] | None = None,
                  max_frames: int | None = None) -> Iterator[tuple[str, StreamFrame, Detections]]:
    """The Python API of live streams: ``(stream name, frame, detections)`` for every frame taken
    from ``urls``, batched through ``detector`` together, until every stream has ended
    (``max_frames``), been given up (its ``ImageReadError`` is raised once the others are done)
    or the caller stops iterating. A stream that cannot be opened raises at once."""
    sources = [Source("stream", url=check_stream_url(url)) for url in urls]

    def refuse(source: Source, exc: ImageReadError) -> None:
        raise exc

    started = start_streams(sources, settings or StreamSettings(), refuse)
    streams = StreamSet([reader for _, reader in started])
    try:
        for batch in detect_streams(detector, streams, classes, max_frames):
            for index, frame, det in batch:
                det.image = started[index][0].name
                yield started[index][0].name, frame, det
    finally:
        streams.stop()
    if streams.failures:
        raise streams.failures[0][1]


class LazyVideo:
    """A stream's annotated video, opened at its first frame (whose size it takes) on ``stack``
    at ``fps``; a video that cannot be written goes to ``on_error`` and is not tried again."""

    def __init__(self, stack: contextlib.ExitStack, path: Path | None, fps: float,
                 on_error: Callable[[OutputError], None]) -> None:
        self.stack, self.path, self.fps, self.on_error = stack, path, fps, on_error
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)
        self.failed = path is None

    @property
    def wanted(self) -> bool:
        """Whether frames are still to be written (a path, and no failed write)."""
        return not self.failed

    def write(self, image: np.ndarray) -> None:
        if self.failed:
            return
        if self._writer is None:
            self._size = (int(image.shape[1]), int(image.shape[0]))
            try:
                self._writer = self.stack.enter_context(video_writer(self.path, self.fps, self._size))
            except OutputError as exc:
                self.failed = True
                self.on_error(exc)
                return
        if image.shape[1::-1] != self._size:  # a camera that changed its resolution
            image = cv2.resize(image, self._size)
        self._writer.write(image)

    @property
    def written(self) -> bool:
        return self._writer is not None and not self.failed


def predict_streams(detector: Detector, sources: Sequence[Source], run: Any, settings: StreamSettings,
                    classes: Sequence[int | str] | None = None,
                    output_names: Callable[[str, str], Path] | None = None,
                    progress: bool = True, max_frames: int | None = None) -> None:
    """Detect in every frame taken from the live ``sources`` at once (module docstring), adding
    their records to ``run`` (a :class:`~.run.PredictRun`, whose ``unreadable`` takes the streams
    that fail; ``"frame"``: the 0-based frame number in the stream), the videos to
    ``output_names(name, ".mp4")``, and printing a line per stream. Raises KeyboardInterrupt
    after Ctrl-C, with every output kept."""
    from tqdm import tqdm

    started = start_streams(sources, settings, lambda source, exc: run.unreadable(source, exc, skipped=False))
    if not started:
        return
    streams = StreamSet([reader for _, reader in started])
    tally = [[0, 0] for _ in started]  # frames, detections per stream
    videos: list[LazyVideo] = []
    interrupted = False
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(streams.stop)
            for source, reader in started:
                path = output_names(source.name, ".mp4") if output_names is not None else None
                videos.append(LazyVideo(stack, path, reader.fps / settings.vid_stride,
                                        lambda exc, p=path: run.save_failed(p, exc)))
            bar = stack.enter_context(tqdm(desc="streams", unit="frame", disable=not progress, leave=False))
            try:
                for batch in detect_streams(detector, streams, classes, max_frames):
                    for index, frame, det in batch:
                        if videos[index].wanted:  # drawn only for a video to write
                            videos[index].write(det.plot(frame.image))
                        det.source, det.image = None, started[index][0].name
                        run.records.append({**det.to_json(), "frame": frame.number - 1})
                        tally[index][0] += 1
                        tally[index][1] += len(det)
                    bar.update(len(batch))
            except KeyboardInterrupt:
                interrupted = True
    except OutputError as exc:  # a finished video could not be put in place
        run.save_failed("video", exc)
    for (source, reader), video, (frames, found) in zip(started, videos, tally):
        where = f" -> {video.path}" if video.written and str(video.path) not in run.unsaved else ""
        dropped = f", {reader.dropped} dropped (live mode keeps the newest frame)" if reader.dropped else ""
        tqdm.write(f"{source.name}: {frames} frames, {found} detections{dropped}{where}")
    for index, failure in streams.failures:
        run.unreadable(started[index][0], failure, skipped=False)
    if interrupted:
        raise KeyboardInterrupt
