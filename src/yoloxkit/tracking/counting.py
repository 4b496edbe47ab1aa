"""Counting tracked objects that cross a line (``--count-line x1,y1,x2,y2``).

:class:`LineCounter` wraps ``supervision``'s ``LineZone`` (MIT, installed with
``yoloxkit[track]``); the crossing logic is the library's, this module maps yoloxkit's
:class:`~yoloxkit.infer.Detections` onto it, names the classes and draws the line.

**Direction.** The line is directed, from ``(x1, y1)`` to ``(x2, y2)`` in image pixels (y down).
*In* is a crossing from the right-hand side to the left-hand side of someone walking along the
line from ``(x1, y1)`` to ``(x2, y2)`` on the image as it is shown; *out* is the other way. So a
line drawn left to right (``0,300,640,300``) counts upward movement as *in*, a line drawn top
to bottom (``320,0,320,480``) counts left-to-right movement as *in*; swap the end points to swap
*in* and *out*. :meth:`LineCounter.draw` marks the line with an arrow pointing to the *in* side.

**When an object counts.** The anchors are the four corners of the box (the library's
default): a box counts once all four corners have passed to the other side, and a box that
straddles the line is on neither side. This is kept over the box centre because it gives
hysteresis for free: a track that jitters on the line, or stops on it (a car at a stop line),
cannot be counted in and out again and again, which centre anchoring does on every wobble of
the box across the line. The price is that a crossing counts a few frames later, when the box
has fully left the line, and that the line is a *segment*: all four corners must lie in the band
between the perpendiculars through its ends, so draw the line across the whole path, a bit
longer than the objects are wide. One frame on the new side is enough
(``minimum_crossing_threshold=1``), so an object that jumps over the line between two frames
counts. The class of a crossing is the class of the detection in the frame it crossed.

**Lost tracks.** ``LineZone`` forgets a track that is missing for two frames in a row, so an
object whose detection drops out for a few frames while it crosses would not count. The counter
therefore shows ``LineZone`` the last box of a missing track again, so that a track missing for
up to ``keep_lost`` frames in a row (default 30, the trackers' own buffer for a lost id; 1 is
``LineZone``'s own memory) still counts when it comes back on the other side. A box shown again
is where the track was last seen, so it never makes a crossing by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from ..errors import TrackingError
from ..infer import Detections
from ..optional import import_optional
from .library import TRACKERS_HINT

__all__ = ["CountLine", "parse_count_line", "LineCounter", "KEEP_LOST_FRAMES"]

#: frames in a row a track may be missing and still count (the trackers' default buffer)
KEEP_LOST_FRAMES = 30
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LINE_BGR = (0, 255, 255)  # yellow, drawn over a black outline: visible on any background
_OUTLINE_BGR = (0, 0, 0)
_TEXT_BGR = (255, 255, 255)


@dataclass(frozen=True)
class CountLine:
    """A directed counting line, ``start`` -> ``end``, in pixels of the frame (x, y)."""

    start: tuple[float, float]
    end: tuple[float, float]

    def __post_init__(self) -> None:
        values = [*self.start, *self.end]
        if len(self.start) != 2 or len(self.end) != 2 or not all(math.isfinite(float(v)) for v in values):
            raise TrackingError(f"a count line needs two finite (x, y) points, got {self.start} -> {self.end}")
        if tuple(self.start) == tuple(self.end):
            raise TrackingError(f"a count line needs two different points, got {self.start} twice")

    def as_list(self) -> list[float]:
        """``[x1, y1, x2, y2]`` as plain floats."""
        return [float(v) for v in (*self.start, *self.end)]

    def in_normal(self) -> tuple[float, float]:
        """Unit vector (x, y) perpendicular to the line, pointing to its *in* side."""
        dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
        length = math.hypot(dx, dy)
        return dy / length, -dx / length


def parse_count_line(text: str) -> CountLine:
    """The :class:`CountLine` of ``"x1,y1,x2,y2"`` (pixels; ints or floats, spaces allowed).

    Raises :class:`TrackingError` (one line) unless it is four finite numbers naming two
    different points.
    """
    usage = f"--count-line must be x1,y1,x2,y2 in pixels, got {text!r}"
    parts = str(text).split(",")
    if len(parts) != 4:
        raise TrackingError(f"{usage} ({len(parts)} values)")
    try:
        values = [float(part.strip()) for part in parts]
    except ValueError:
        raise TrackingError(usage) from None
    if not all(math.isfinite(v) for v in values):
        raise TrackingError(f"{usage} (not a finite number)")
    if values[:2] == values[2:]:
        raise TrackingError(f"{usage} (a line of zero length)")
    return CountLine((values[0], values[1]), (values[2], values[3]))


class LineCounter:
    """Counts tracks crossing a line, per class, both ways.

    ``names`` are the detector's class names (``class_ids`` index them). Feed every frame's
    tracked :class:`Detections` to :meth:`update`, in order; detections without ``track_ids``
    count nothing. ``keep_lost``: frames in a row a track may be missing (module docstring).
    """

    def __init__(self, line: CountLine, names: Sequence[str], keep_lost: int = KEEP_LOST_FRAMES) -> None:
        if keep_lost < 1:
            raise TrackingError(f"keep_lost must be >= 1, got {keep_lost}")
        self.line = line
        self.names = [str(name) for name in names]
        self.keep_lost = int(keep_lost)
        self._sv = import_optional("supervision", f"line counting needs the supervision package: {TRACKERS_HINT}")
        self.reset()

    def __repr__(self) -> str:
        totals = self.totals()
        return f"LineCounter({self.line.as_list()}, in={totals['in']}, out={totals['out']})"

    def reset(self) -> None:
        """Forget every track and set the counts to zero (before a new sequence)."""
        sv = self._sv
        self._zone = sv.LineZone(start=sv.Point(*self.line.start), end=sv.Point(*self.line.end),
                                 minimum_crossing_threshold=1)
        self._lost: dict[int, tuple[np.ndarray, int, int]] = {}  # id -> (last box, class id, frames missing)

    def update(self, tracked: Detections) -> tuple[np.ndarray, np.ndarray]:
        """Count one frame's tracked detections: ``(crossed_in, crossed_out)``, bool ``[N]``,
        true where that detection crossed the line in this frame."""
        n = len(tracked)
        ids = tracked.track_ids if tracked.track_ids is not None and n else np.zeros(0, dtype=np.int64)
        boxes = tracked.boxes[: len(ids)].astype(np.float64)
        classes = tracked.class_ids[: len(ids)]
        seen = set(ids.tolist())
        ghosts = [(track, box, cls) for track, (box, cls, _) in self._lost.items() if track not in seen]
        all_boxes = np.concatenate([boxes, np.asarray([g[1] for g in ghosts]).reshape(-1, 4)])
        all_ids = np.concatenate([ids, np.asarray([g[0] for g in ghosts], dtype=np.int64)])
        all_classes = np.concatenate([classes, np.asarray([g[2] for g in ghosts], dtype=np.int64)])
        frame = self._sv.Detections(xyxy=all_boxes.reshape(-1, 4), class_id=all_classes.astype(int),
                                    tracker_id=all_ids.astype(int))
        crossed_in, crossed_out = self._zone.trigger(frame)
        self._remember(ids, boxes, classes)
        result_in, result_out = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        result_in[: len(ids)] = crossed_in[: len(ids)]
        result_out[: len(ids)] = crossed_out[: len(ids)]
        return result_in, result_out

    def _remember(self, ids: np.ndarray, boxes: np.ndarray, classes: np.ndarray) -> None:
        """Age the missing tracks and store the last box of each track seen in this frame."""
        # LineZone itself bridges one missing frame, so a track is shown again keep_lost - 1 times.
        for track in list(self._lost):
            box, cls, missing = self._lost[track]
            if missing + 1 >= self.keep_lost - 1:
                del self._lost[track]
            else:
                self._lost[track] = (box, cls, missing + 1)
        if self.keep_lost <= 1:
            return
        for track, box, cls in zip(ids.tolist(), boxes, classes.tolist()):
            if track >= 0:  # negative ids are unconfirmed tracks: the line ignores them
                self._lost[track] = (box.copy(), int(cls), 0)

    def _name(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else str(class_id)

    def counts(self) -> dict[str, dict[str, int]]:
        """Crossings per class name, ``{"person": {"in": 2, "out": 1}, ...}``: only the classes
        seen crossing, by class id."""
        ins, outs = self._zone.in_count_per_class, self._zone.out_count_per_class
        result: dict[str, dict[str, int]] = {}
        for class_id in sorted({*ins, *outs}):  # the line is always given class ids: ints
            entry = result.setdefault(self._name(int(class_id)), {"in": 0, "out": 0})
            entry["in"] += int(ins.get(class_id, 0))
            entry["out"] += int(outs.get(class_id, 0))
        return result

    def totals(self) -> dict[str, int]:
        """All crossings, ``{"in": n, "out": m}``."""
        return {"in": int(self._zone.in_count), "out": int(self._zone.out_count)}

    def to_json(self) -> dict[str, Any]:
        """``{"line": [x1, y1, x2, y2], "in": n, "out": m, "per_class": counts()}`` (plain types)."""
        return {"line": self.line.as_list(), **self.totals(), "per_class": self.counts()}

    def draw(self, image: np.ndarray) -> np.ndarray:
        """A copy of BGR ``image`` ``[H, W, 3]`` with the line, an arrow to its *in* side and an
        ``in N  out M`` label next to it, outlined in black so they read on any background."""
        canvas = np.array(image, copy=True)
        height, width = canvas.shape[:2]
        scale = max(0.4, min(1.2, max(height, width) / 1000))
        thickness = max(2, round(3 * scale))
        start = _pixel(self.line.start)
        end = _pixel(self.line.end)
        middle = ((self.line.start[0] + self.line.end[0]) / 2, (self.line.start[1] + self.line.end[1]) / 2)
        nx, ny = self.line.in_normal()
        arrow = max(15.0, 40 * scale)
        tip = _pixel((middle[0] + nx * arrow, middle[1] + ny * arrow))
        for color, width_px in ((_OUTLINE_BGR, thickness + 4), (_LINE_BGR, thickness)):
            cv2.line(canvas, start, end, color, width_px, cv2.LINE_AA)
            cv2.arrowedLine(canvas, _pixel(middle), tip, color, width_px, cv2.LINE_AA, tipLength=0.35)
        totals = self.totals()
        _draw_label(canvas, f"in {totals['in']}  out {totals['out']}", middle, (-nx, -ny), scale)
        return canvas


def _pixel(point: Sequence[float]) -> tuple[int, int]:
    """Integer pixel of a float point, bounded so that OpenCV accepts points far off the frame."""
    return tuple(int(round(min(max(float(v), -1e6), 1e6))) for v in point)  # type: ignore[return-value]


def _draw_label(canvas: np.ndarray, text: str, anchor: tuple[float, float], away: tuple[float, float],
                scale: float) -> None:
    """White ``text`` on a black box beside ``anchor`` (pixels), moved in the direction ``away``
    (a unit vector) so that it does not cover the line, and kept within the image."""
    font_scale, weight = 0.7 * scale, max(1, round(2 * scale) - 1)
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, weight)
    box_w, box_h = text_w + 6, text_h + baseline + 6
    gap = 6 + 0.5 * (abs(away[0]) * box_w + abs(away[1]) * box_h)  # centre distance that clears the line
    centre_x, centre_y = anchor[0] + away[0] * gap, anchor[1] + away[1] * gap
    height, width = canvas.shape[:2]
    x1 = int(min(max(round(centre_x - box_w / 2), 0), max(0, width - box_w)))
    y1 = int(min(max(round(centre_y - box_h / 2), 0), max(0, height - box_h)))
    cv2.rectangle(canvas, (x1, y1), (x1 + box_w - 1, y1 + box_h - 1), _OUTLINE_BGR, -1)
    cv2.putText(canvas, text, (x1 + 3, y1 + 3 + text_h), _FONT, font_scale, _TEXT_BGR, weight, cv2.LINE_AA)
