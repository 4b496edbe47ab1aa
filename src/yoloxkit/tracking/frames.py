"""What ``track`` reads: a video file, a webcam, or a folder of frames, as one sequence.

A folder holds the frames as images, in name order (those of its ``img1/`` if it has one); a
MOTChallenge sequence folder gives the frames and the frame rate its ``seqinfo.ini`` names. Every problem is
an :class:`ImageReadError` naming the source: a missing path, a file that is not a video, a
video that cannot be decoded, a webcam index with no camera, a folder without images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..data.mot_sequence import read_seqinfo, sequence_frames
from ..errors import ImageReadError
from ..imaging import is_image_file, read_image
from ..infer.sources import Source, is_video_file
from ..infer.video import DEFAULT_FPS, open_capture

__all__ = ["FrameSource", "open_frames"]


@dataclass
class FrameSource:
    """One sequence of frames. Iterate for ``(frame_number, BGR array)`` pairs (1-based); an
    unreadable frame of a folder is yielded as its :class:`ImageReadError` in its place."""

    name: str
    kind: str  # "video", "webcam" or "frames"
    fps: float
    length: int | None  # frames, None when unknown (a webcam)
    size: tuple[int, int]  # (width, height) of the first frame
    source: Source | None = None
    files: list[Path] | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | ImageReadError]]:
        if self.files is not None:
            for number, path in enumerate(self.files, start=1):
                try:
                    yield number, read_image(path)
                except ImageReadError as exc:
                    yield number, exc
            return
        capture, _ = open_capture(self.source)
        try:
            number = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                number += 1
                yield number, frame
        finally:
            capture.release()


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
    not a file) or a folder of frames. ``fps`` overrides the frame rate (a folder's default: its
    ``seqinfo.ini``, else 30). The video or camera is opened here, so a bad one fails at once."""
    text = str(argument)
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


def frame_size(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` resized to ``size`` ``(w, h)`` when it differs (a folder's frames may vary)."""
    return frame if frame.shape[1::-1] == tuple(size) else cv2.resize(frame, tuple(size))
