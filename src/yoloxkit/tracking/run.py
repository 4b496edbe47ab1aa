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
from ..infer.video import video_writer
from .frames import FrameSource, frame_size
from .mot import format_mot_rows, mot_writer
from .tracker import Tracker

__all__ = ["TrackRun", "track_sequence"]


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

    def describe(self) -> str:
        """One line: frames, tracks, boxes, speed and where the outputs went."""
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        done = "interrupted after " if self.interrupted else ""
        skipped = f", {len(self.skipped)} unreadable frames skipped" if self.skipped else ""
        where = (" -> " + ", ".join(str(p) for p in self.outputs)) if self.outputs else ""
        return (f"{self.name}: {done}{self.frames} frames, {len(self.tracks)} tracks, {self.boxes} tracked boxes, "
                f"{fps:.1f} frames/s{skipped}{where}")


def track_sequence(
    tracker: Tracker,
    frames: FrameSource,
    video_path: str | os.PathLike | None = None,
    mot_path: str | os.PathLike | None = None,
    records: list[dict] | None = None,
    progress: bool = True,
) -> TrackRun:
    """Track every frame of ``frames``, writing the annotated video to ``video_path`` and the
    MOTChallenge rows to ``mot_path`` (each if given), and appending one JSON record per frame
    (the detections' shape, ``track_id`` per detection, plus ``frame``) to ``records``.

    Ctrl-C ends the run early with everything done kept (``TrackRun.interrupted``); a webcam
    runs until it stops delivering frames or Ctrl-C.
    """
    from tqdm import tqdm

    run = TrackRun(frames.name)
    frames = tracker.frames(frames)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        writer = None
        if video_path is not None:
            writer = stack.enter_context(video_writer(video_path, frames.fps, frames.size))
            run.outputs.append(Path(video_path))
        rows = None
        if mot_path is not None:
            rows = stack.enter_context(mot_writer(mot_path))
            run.outputs.append(Path(mot_path))
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
                if writer is not None:  # an unreadable frame is a grey one, so the video keeps its timing
                    image = np.full((frames.size[1], frames.size[0], 3), PAD_VALUE, np.uint8) if isinstance(
                        frame, Exception) else frame
                    writer.write(tracked.plot(image, trails=tracker.visible_trails(tracked)))
                if rows is not None:
                    lines = format_mot_rows(number, tracked.track_ids, tracked.boxes, tracked.scores)
                    rows.write("".join(line + "\n" for line in lines))
                    rows.flush()
                if records is not None:
                    tracked.image = frames.name
                    records.append({**tracked.to_json(), "frame": number})
                run.frames = number
                run.tracks.update(tracked.track_ids.tolist())
                run.boxes += len(tracked)
                bar.update(1)
                bar.set_postfix(tracks=len(run.tracks), refresh=False)
        except KeyboardInterrupt:
            run.interrupted = True
    run.seconds = time.perf_counter() - start
    return run
