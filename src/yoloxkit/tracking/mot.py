"""MOTChallenge text files: reading them with line-numbered checks, writing them atomically.

A row is ``frame,id,x,y,w,h,score,a,b,c``: a 1-based frame, a track id, the box's top-left
corner and size in pixels, then a score. In ground truth (``gt/gt.txt``) the seventh column is
the "consider" mark (0: ignore the row), the eighth the class and the ninth the visibility; in
tracker output the last three are ``-1``. :func:`read_mot` refuses, with one line naming the
file and line, what an evaluator would silently misread: too few or a changing number of
columns, text that is not a number, a frame below 1, a negative id, a box without area, and one
id twice in a frame.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from ..errors import TrackingError
from ..io import atomic_path
from ..text import TextReadError, read_text

__all__ = ["MotTable", "read_mot", "format_mot_row", "format_mot_rows", "tracks_table", "write_mot", "mot_writer"]

#: columns of a MOTChallenge row up to the box
BOX_COLUMNS = 6


@dataclass(frozen=True)
class MotTable:
    """The rows of one MOTChallenge file, in file order.

    ``frames`` and ``ids`` int64 ``[N]``; ``boxes`` float64 ``[N, 4]`` as ``x, y, w, h``;
    ``scores`` float64 ``[N]`` (the seventh column, 1 when absent: the mark of ground truth);
    ``classes`` int64 ``[N]`` (the eighth column, 1 when absent or -1); ``visibility`` float64
    ``[N]`` (the ninth, 1 when absent or -1). ``path`` names the file (``None`` when built in memory).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray = field(default=None)  # type: ignore[assignment]
    visibility: np.ndarray = field(default=None)  # type: ignore[assignment]
    path: str | None = None

    def __post_init__(self) -> None:
        n = len(np.asarray(self.frames).reshape(-1))
        defaults = {"classes": (np.int64, 1), "visibility": (np.float64, 1.0)}
        for name, dtype in (("frames", np.int64), ("ids", np.int64), ("scores", np.float64)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype).reshape(-1))
        object.__setattr__(self, "boxes", np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4))
        for name, (dtype, default) in defaults.items():
            value = getattr(self, name)
            value = np.full(n, default, dtype=dtype) if value is None else np.asarray(value, dtype=dtype).reshape(-1)
            object.__setattr__(self, name, value)
        lengths = {len(self.frames), len(self.ids), len(self.boxes), len(self.scores), len(self.classes),
                   len(self.visibility)}
        if len(lengths) != 1:
            raise ValueError(f"MotTable columns differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def last_frame(self) -> int:
        """The highest frame number (0 for an empty table)."""
        return int(self.frames.max()) if len(self) else 0

    @property
    def boxes_xyxy(self) -> np.ndarray:
        """The boxes as ``x1, y1, x2, y2``."""
        boxes = self.boxes.copy()
        boxes[:, 2:] += boxes[:, :2]
        return boxes

    def frame(self, number: int) -> "MotTable":
        """The rows of one frame."""
        keep = self.frames == number
        return MotTable(self.frames[keep], self.ids[keep], self.boxes[keep], self.scores[keep],
                        self.classes[keep], self.visibility[keep], self.path)

    @classmethod
    def empty(cls, path: str | None = None) -> "MotTable":
        """A table without rows."""
        return cls(np.zeros(0), np.zeros(0), np.zeros((0, 4)), np.zeros(0), path=path)


def _number(text: str, where: str, column: int, row: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TrackingError(f"{where}: column {column} is not a number ({text.strip()!r}) in {row!r}") from None
    if not math.isfinite(value):
        raise TrackingError(f"{where}: column {column} is not finite ({text.strip()!r}) in {row!r}")
    return value


def _integer(value: float, where: str, what: str, row: str, low: int) -> int:
    if value != int(value) or value < low:
        raise TrackingError(f"{where}: {what} must be a whole number >= {low}, got {value:g} in {row!r}")
    return int(value)


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise TrackingError(f"MOT file not found: {path}")
    if not path.is_file():
        raise TrackingError(f"not a MOT text file: {path} (a folder)")
    try:
        return read_text(path, "MOT file").splitlines()
    except TextReadError as exc:
        raise TrackingError(f"not a MOT text file: {path} ({exc.reason})") from None
    except OSError as exc:
        raise TrackingError(f"cannot read MOT file {path}: {exc.strerror or exc}") from None


def read_mot(path: str | os.PathLike) -> MotTable:
    """Read a MOTChallenge file (ground truth or tracker output); an empty file is an empty table.

    Raises :class:`TrackingError` naming the file and line for a malformed row.
    """
    path = Path(path)
    columns = None
    values: list[list[float]] = []
    seen: dict[tuple[int, int], int] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{path}:{number}"
        cells = [c for c in text.replace(";", ",").split(",")]
        if len(cells) == 1:  # whitespace-separated files (some tools write them)
            cells = text.split()
        if len(cells) < BOX_COLUMNS:
            raise TrackingError(f"{where}: expected at least {BOX_COLUMNS} comma-separated columns "
                                f"(frame,id,x,y,w,h,...), got {len(cells)} in {text!r}")
        if columns is None:
            columns = len(cells)
        elif len(cells) != columns:
            raise TrackingError(f"{where}: {len(cells)} columns, but the rows before have {columns}: {text!r}")
        row = [_number(cell, where, index + 1, text) for index, cell in enumerate(cells)]
        frame = _integer(row[0], where, "the frame (column 1)", text, 1)
        track = _integer(row[1], where, "the id (column 2)", text, 0)
        if row[4] <= 0 or row[5] <= 0:
            raise TrackingError(f"{where}: the box has no area (width {row[4]:g}, height {row[5]:g}) in {text!r}")
        if (frame, track) in seen:
            raise TrackingError(f"{where}: id {track} appears twice in frame {frame} (first on line "
                                f"{seen[frame, track]})")
        seen[frame, track] = number
        values.append(row + [math.nan] * (9 - len(row)))
    if not values:
        return MotTable.empty(str(path))
    data = np.asarray([row[:9] for row in values], dtype=np.float64)
    scores = np.where(np.isnan(data[:, 6]), 1.0, data[:, 6])
    classes = np.where(np.isnan(data[:, 7]) | (data[:, 7] < 0), 1, data[:, 7])
    visibility = np.where(np.isnan(data[:, 8]) | (data[:, 8] < 0), 1.0, data[:, 8])
    return MotTable(data[:, 0], data[:, 1], data[:, 2:6], scores, classes, visibility, str(path))


def format_mot_row(frame: int, track_id: int, box_xyxy, score: float) -> str:
    """One tracker-output row: ``frame,id,x,y,w,h,score,-1,-1,-1`` (boxes to 0.01 px)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    return f"{int(frame)},{int(track_id)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{float(score):.4f},-1,-1,-1"


def format_mot_rows(frame: int, track_ids: np.ndarray, boxes_xyxy: np.ndarray, scores: np.ndarray) -> list[str]:
    """The rows of one frame's tracked detections, by id; detections without an id (< 0) are left out."""
    order = np.argsort(np.asarray(track_ids), kind="stable")
    return [format_mot_row(frame, track_ids[i], boxes_xyxy[i], scores[i]) for i in order.tolist() if track_ids[i] >= 0]


def tracks_table(results: Iterable) -> MotTable:
    """The MOT rows of tracked :class:`~yoloxkit.Detections`, one per frame (frame 1 first),
    rounded as :func:`format_mot_row` writes them: the table ``track --mot-out`` writes."""
    lines: list[str] = []
    for number, detections in enumerate(results, start=1):
        lines.extend(format_mot_rows(number, detections.track_ids, detections.boxes, detections.scores))
    if not lines:
        return MotTable.empty()
    data = np.asarray([[float(v) for v in line.split(",")[:7]] for line in lines], dtype=np.float64)
    return MotTable(data[:, 0], data[:, 1], data[:, 2:6], data[:, 6])


def write_mot(path: str | os.PathLike, table: MotTable) -> Path:
    """Write ``table`` as tracker output (atomically), rows sorted by frame then id."""
    order = np.lexsort((table.ids, table.frames))
    xyxy = table.boxes_xyxy
    lines = [format_mot_row(table.frames[i], table.ids[i], xyxy[i], table.scores[i]) for i in order.tolist()]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def mot_writer(path: str | os.PathLike) -> Iterator[IO[str]]:
    """A text file for rows written frame by frame: written beside ``path`` and renamed onto it
    when the block ends, also when it ends by an exception (the rows of the frames done are
    complete, so an interrupted run keeps them)."""
    with atomic_path(path, keep_on_error=True) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            yield handle
