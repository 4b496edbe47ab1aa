"""One ``track`` run over a sequence: the annotated video, MOTChallenge rows and JSON records.

Every output is written beside its final name and renamed into place when the run ends, also
when it ends by Ctrl-C: the video is closed first (so it plays) and holds every frame done, and
the MOT file every row of those frames. A frame of a folder that cannot be read is skipped with a
warning; the tracker sees a frame with nothing found, and the frame numbers stay those of the files.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..imaging import PAD_VALUE
from ..infer import Detections
from ..infer.video import video_writer
from .counting import LineCounter
from .frames import FrameSource, frame_size
from .mot import format_mot_rows, mot_writer
from .tracker import Tracker

__all__ = ["TrackRun", "SequenceOutputs", "track_sequence"]


@dataclass
class TrackRun:
    """What a run did: frames done, distinct track ids, tracked boxes, skipped frames, seconds."""

    name: str
    frames: int = 0
    tracks: set[int] = field(default_factory=set)
    boxes: int = 0
    skipped: list[int] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    outputs: list[Path] = field(default_factory=list)
    counts: dict | None = None  # the LineCounter's JSON at the end, when a line was counted

    def describe(self) -> str:
        """One line: frames, tracks, boxes, speed and where the outputs went."""
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        done = "interrupted after " if self.interrupted else ""
        skipped = f", {len(self.skipped)} unreadable frames skipped" if self.skipped else ""
        where = (" -> " + ", ".join(str(p) for p in self.outputs)) if self.outputs else ""
        counted = ""
        if self.counts is not None:
            per_class = ", ".join(f"{name} {c['in']}/{c['out']}" for name, c in self.counts["per_class"].items())
            counted = f", line crossings in {self.counts['in']} out {self.counts['out']}"
            counted += f" ({per_class}, in/out)" if per_class else ""
        return (f"{self.name}: {done}{self.frames} frames, {len(self.tracks)} tracks, {self.boxes} tracked boxes, "
                f"{fps:.1f} frames/s{counted}{skipped}{where}")


class SequenceOutputs:
    """What one tracked sequence writes, frame by frame: the annotated video (with the counting
    line), the MOTChallenge rows, the JSON records (with ``"line_count"``) and the run's tallies.
    Enter it (on an ``ExitStack``) to open the files; they are renamed into place on exit."""

    def __init__(self, run: TrackRun, tracker: Tracker, size: tuple[int, int], fps: float,
                 video_path: str | os.PathLike | None = None, mot_path: str | os.PathLike | None = None,
                 records: list[dict] | None = None, counter: LineCounter | None = None) -> None:
        self.run, self.tracker, self.size, self.fps = run, tracker, tuple(size), fps
        self.video_path, self.mot_path, self.records, self.counter = video_path, mot_path, records, counter
        self._writer = self._rows = None

    def open(self, stack: contextlib.ExitStack) -> SequenceOutputs:
        """Open the video and MOT files on ``stack``; starts the counter afresh."""
        if self.counter is not None:
            self.counter.reset()
        if self.video_path is not None:
            self._writer = stack.enter_context(video_writer(self.video_path, self.fps, self.size))
            self.run.outputs.append(Path(self.video_path))
        if self.mot_path is not None:
            self._rows = stack.enter_context(mot_writer(self.mot_path))
            self.run.outputs.append(Path(self.mot_path))
        return self

    def write(self, number: int, frame: np.ndarray | Exception, tracked: Detections) -> None:
        """Frame ``number``'s outputs (an unreadable frame, an exception, is a grey video frame)."""
        counter = self.counter
        crossed = counter.update(tracked) if counter is not None else None
        if self._writer is not None:  # an unreadable frame is a grey one, so the video keeps its timing
            image = np.full((self.size[1], self.size[0], 3), PAD_VALUE, np.uint8) if isinstance(
                frame, Exception) else frame
            plotted = tracked.plot(image, trails=self.tracker.visible_trails(tracked))
            self._writer.write(counter.draw(plotted) if counter is not None else plotted)
        if self._rows is not None:
            lines = format_mot_rows(number, tracked.track_ids, tracked.boxes, tracked.scores)
            self._rows.write("".join(line + "\n" for line in lines))
            self._rows.flush()
        if self.records is not None:
            tracked.image = self.run.name
            record = {**tracked.to_json(), "frame": number}
            if crossed is not None:
                record["line_count"] = {**counter.to_json(), "crossed_in": tracked.track_ids[crossed[0]].tolist(),
                                        "crossed_out": tracked.track_ids[crossed[1]].tolist()}
            self.records.append(record)
        self.run.frames += 1  # frames done (numbers skip frames with --vid-stride, or dropped live)
        self.run.tracks.update(tracked.track_ids.tolist())
        self.run.boxes += len(tracked)
        self.run.counts = counter.to_json() if counter is not None else None


def track_sequence(
    tracker: Tracker,
    frames: FrameSource,
    video_path: str | os.PathLike | None = None,
    mot_path: str | os.PathLike | None = None,
    records: list[dict] | None = None,
    progress: bool = True,
    counter: LineCounter | None = None,
) -> TrackRun:
    """Track every frame of ``frames``, writing the annotated video to ``video_path`` and the
    MOTChallenge rows to ``mot_path`` (each if given), and appending one JSON record per frame
    (the detections' shape, ``track_id`` per detection, plus ``frame``) to ``records``.
    With a ``counter`` (started afresh), each record also gets ``"line_count"``: the crossings so
    far and the ids that crossed in that frame; the video shows the line and its counts.

    Ctrl-C ends the run early with everything done kept (``TrackRun.interrupted``); a webcam
    runs until it stops delivering frames or Ctrl-C.
    """
    from tqdm import tqdm

    run = TrackRun(frames.name)
    frames = tracker.frames(frames)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        outputs = SequenceOutputs(run, tracker, frames.size, frames.fps, video_path, mot_path, records,
                                  counter).open(stack)
        bar = stack.enter_context(tqdm(total=frames.length, desc=frames.name, unit="frame", disable=not progress,
                                       leave=False, file=sys.stderr))
        try:
            for number, frame in frames:
                if isinstance(frame, Exception):
                    tqdm.write(f"warning: {frame} (frame {number} skipped)", file=sys.stderr)
                    run.skipped.append(number)
                    tracked = tracker.update_detections(tracker.empty(*frames.size))
                else:
                    frame = frame_size(frame, frames.size)
                    tracked = tracker.update(frame)
                outputs.write(number, frame, tracked)
                bar.update(1)
                bar.set_postfix(tracks=len(run.tracks), refresh=False)
        except KeyboardInterrupt:
            run.interrupted = True
    run.seconds = time.perf_counter() - start
    return run
