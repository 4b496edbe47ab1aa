"""``Tracker``: a :class:`~yoloxkit.Detector` and a multi-object tracker, frame by frame."""

from __future__ import annotations

import os
import warnings
from collections import deque
from typing import Iterable, Iterator

import numpy as np

from ..errors import ImageReadError, TrackingError
from ..infer import Detections, Detector
from .frames import FrameSource, open_frames
from .library import AssociationTracker, TrackerSettings, default_score_thresholds, make_tracker
from .per_class import PerClassTracker

__all__ = ["Tracker", "DEFAULT_TRACKER", "DEFAULT_TRACK_CONF", "TRAIL_LENGTH"]

DEFAULT_TRACKER = "bytetrack"
#: the detector's score threshold of a tracking run: ByteTrack-style trackers use the low-score
#: boxes in a second association round, so it sits below the prediction default
DEFAULT_TRACK_CONF = 0.1
#: box centres kept per track for the trails drawn on video frames
TRAIL_LENGTH = 30


class Tracker:
    """Detect and track: ``Tracker(detector, tracker="bytetrack", track_thresh=..., ...)``.

    ``tracker`` is ``bytetrack`` (default), ``botsort``, ``ocsort``, ``sort`` (from the
    ``trackers`` library) or ``iou`` (the naive baseline); the keyword thresholds are those of
    :class:`TrackerSettings`; the score thresholds left out follow
    :func:`~yoloxkit.tracking.library.default_score_thresholds` (0.5, or the detector's ``conf``
    if higher). ``per_class=True`` tracks every class on its own (:mod:`.per_class`); the
    default is class-agnostic, as ByteTrack is. :meth:`update` takes one BGR frame and returns its
    :class:`Detections` with ``track_ids`` (only detections that belong to a confirmed track,
    ids from 1); :meth:`track` yields them for every frame of a video, webcam, folder or
    iterable of arrays. ``classes`` keeps only those classes (names or ids) before tracking.
    The detector's own settings apply, sliced inference included (a
    ``Detector(..., slice_size=...)`` is tracked tile-merged). ``detector`` may be ``None`` when
    only :meth:`update_detections` is used, with detections from elsewhere.
    """

    def __init__(self, detector: Detector | None, tracker: str = DEFAULT_TRACKER, frame_rate: float | None = None,
                 trail_length: int = TRAIL_LENGTH, classes: Iterable[int | str] | None = None,
                 per_class: bool = False, **settings: float | int | None) -> None:
        self.detector = detector
        self.classes = None if classes is None else list(classes)
        if self.classes is not None and detector is not None:
            detector.resolve_classes(self.classes)  # an unknown class fails here
        self._rate_given = frame_rate is not None  # else the source's frame rate, once known (30 until then)
        self.per_class = bool(per_class)
        conf = getattr(detector, "conf", None)
        settings = {**default_score_thresholds(tracker, conf), **{k: v for k, v in settings.items() if v is not None}}
        try:
            self.settings = TrackerSettings(frame_rate=30.0 if frame_rate is None else frame_rate, **settings)
        except TypeError as exc:
            raise TrackingError(f"unknown tracker setting: {exc}") from None
        self._kind = tracker
        self.backend: AssociationTracker | PerClassTracker = self._make_backend()
        self.name = self.backend.name
        self.trail_length = int(trail_length)
        self.trails: dict[int, deque] = {}

    def _make_backend(self) -> AssociationTracker | PerClassTracker:
        if self.per_class:
            return PerClassTracker(lambda: make_tracker(self._kind, self.settings))
        return make_tracker(self._kind, self.settings)

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v}" for k, v in self.settings.given().items())
        per_class = ", per_class" if self.per_class else ""
        return f"Tracker({self.name}{', ' + given if given else ''}{per_class}, frame_rate={self.settings.frame_rate:g})"

    def reset(self) -> None:
        """Forget every track (before a new sequence)."""
        self.backend.reset()
        self.trails = {}

    def update(self, frame: np.ndarray) -> Detections:
        """Detect in one BGR frame and track: the tracked :class:`Detections` of that frame."""
        if self.detector is None:
            raise TrackingError("this Tracker has no detector: pass detections to update_detections()")
        detections = self.detector.predict_arrays([frame], classes=self.classes)[0]
        return self.update_detections(detections, frame)

    def update_detections(self, detections: Detections, frame: np.ndarray | None = None) -> Detections:
        """Track given detections of the next frame (``frame`` helps trackers that estimate
        camera motion, BoT-SORT); returns those in a track, with ``track_ids``, by score."""
        if self.per_class:
            index, ids = self.backend.update(detections.boxes, detections.scores, frame, detections.class_ids)
        else:
            index, ids = self.backend.update(detections.boxes, detections.scores, frame)
        order = np.argsort(-detections.scores[index], kind="stable")
        tracked = detections.select(index[order])
        tracked.track_ids = ids[order]
        self._extend_trails(tracked)
        return tracked

    def _extend_trails(self, tracked: Detections) -> None:
        centres = (tracked.boxes[:, :2] + tracked.boxes[:, 2:]) / 2
        seen = set()
        for track_id, centre in zip(tracked.track_ids.tolist(), centres.tolist()):
            trail = self.trails.setdefault(track_id, deque(maxlen=self.trail_length))
            trail.append((centre[0], centre[1]))
            seen.add(track_id)
        for track_id in [t for t in self.trails if t not in seen]:
            del self.trails[track_id]  # a trail ends when its track is not seen

    def visible_trails(self, tracked: Detections) -> dict[int, list[tuple[float, float]]]:
        """The trails of the tracks in ``tracked`` (for :meth:`Detections.plot`)."""
        return {t: list(self.trails.get(t, ())) for t in tracked.track_ids.tolist()}

    def frames(self, source: str | os.PathLike | int | FrameSource) -> FrameSource:
        """The :class:`FrameSource` of a video path, webcam index or folder; its frame rate
        becomes the tracker's unless ``frame_rate`` was given. Starts a fresh tracker."""
        frames = source if isinstance(source, FrameSource) else open_frames(source)
        if not self._rate_given and frames.fps != self.settings.frame_rate:
            self.settings = TrackerSettings(**{**self.settings.given(), "frame_rate": frames.fps})
            self.backend = self._make_backend()  # a fresh tracker at the new rate
            self.trails = {}
        else:
            self.reset()
        return frames

    def empty(self, width: int = 0, height: int = 0) -> Detections:
        """No detections (a frame that could not be read), with this detector's class names."""
        names = list(self.detector.names) if self.detector is not None else []
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0), names, width=width, height=height,
                          track_ids=np.zeros(0))

    def track(self, source: str | os.PathLike | int | FrameSource | Iterable[np.ndarray]) -> Iterator[Detections]:
        """Track every frame of ``source`` from a fresh start: one :class:`Detections` per frame,
        ``image`` set to the frame number. A frame of a folder that cannot be read gives a
        warning and an empty result: the tracker sees a frame with nothing found."""
        if isinstance(source, (str, os.PathLike, int, FrameSource)):
            frames: Iterable = self.frames(source)
        else:
            self.reset()
            frames = enumerate(source, start=1)
        for number, frame in frames:
            if isinstance(frame, ImageReadError):
                warnings.warn(f"{frame} (frame {number} skipped)", stacklevel=2)
                tracked = self.update_detections(self.empty())
            else:
                tracked = self.update(frame)
            tracked.image = str(number)
            yield tracked
