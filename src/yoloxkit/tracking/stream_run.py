"""``track`` on live streams: the streams' newest frames batched through one detector
(:func:`yoloxkit.infer.stream_run.detect_streams`), each stream with its own :class:`Tracker`
state, counting line and outputs (video, MOTChallenge rows, JSON records), opened at its first
frame. A stream that cannot be opened or is given up costs only itself; Ctrl-C keeps every output.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from ..errors import ImageReadError
from ..infer import Detector
from ..infer.sources import Source
from ..infer.stream_run import detect_streams, start_streams
from ..infer.stream_set import StreamSet
from ..infer.streams import StreamSettings
from .counting import LineCounter
from .run import SequenceOutputs, TrackRun
from .tracker import Tracker

__all__ = ["StreamTrackRun", "track_streams"]


class StreamTrackRun:
    """What a ``track`` run over streams did: one :class:`TrackRun` per stream opened, and the
    streams that could not be opened or were given up, with their errors (in that order)."""

    def __init__(self) -> None:
        self.runs: list[TrackRun] = []
        self.failures: list[tuple[Source, ImageReadError]] = []
        self.interrupted = False


def track_streams(
    detector: Detector,
    make_tracker: Callable[[float], Tracker],
    sources: Sequence[Source],
    settings: StreamSettings,
    video_dir: str | Path | None = None,
    mot_paths: dict[str, Path | None] | None = None,
    records: list[dict] | None = None,
    make_counter: Callable[[], LineCounter | None] = lambda: None,
    progress: bool = True,
    max_frames: int | None = None,
) -> StreamTrackRun:
    """Track every frame taken from the live ``sources`` together (module docstring).

    ``make_tracker(frame_rate)`` gives each stream its tracker (at the stream's frame rate over
    ``settings.vid_stride``); videos go to ``video_dir/NAME.mp4``, MOT rows to ``mot_paths[NAME]``,
    JSON records (with ``"image"``: NAME) to ``records``; ``make_counter`` gives each stream its
    line counter. Each stream ends after ``max_frames`` frames, or when given up, or on Ctrl-C.
    """
    from tqdm import tqdm

    result = StreamTrackRun()
    started = start_streams(sources, settings, lambda source, exc: result.failures.append((source, exc)))
    if not started:
        return result
    streams = StreamSet([reader for _, reader in started])
    rates = [reader.fps / settings.vid_stride for _, reader in started]  # of the frames taken
    trackers = [make_tracker(rate) for rate in rates]
    result.runs = [TrackRun(source.name) for source, _ in started]
    outputs: list[SequenceOutputs | None] = [None] * len(started)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.callback(streams.stop)
        bar = stack.enter_context(tqdm(desc="streams", unit="frame", disable=not progress, leave=False,
                                       file=sys.stderr))
        try:
            for batch in detect_streams(detector, streams, trackers[0].classes, max_frames):
                for index, frame, det in batch:
                    if outputs[index] is None:  # opened at the first frame, which gives the size
                        name = started[index][0].name
                        video = Path(video_dir) / f"{name}.mp4" if video_dir is not None else None
                        outputs[index] = SequenceOutputs(
                            result.runs[index], trackers[index], frame.image.shape[1::-1], rates[index], video,
                            (mot_paths or {}).get(name), records, make_counter()).open(stack)
                    tracked = trackers[index].update_detections(det, frame.image)
                    outputs[index].write(frame.number, frame.image, tracked)
                bar.update(len(batch))
        except KeyboardInterrupt:
            result.interrupted = True
    seconds = time.perf_counter() - start
    for run in result.runs:
        run.seconds, run.interrupted = seconds, result.interrupted
    result.failures.extend((started[index][0], failure) for index, failure in streams.failures)
    return result
