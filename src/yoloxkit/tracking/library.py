"""The trackers: SORT, ByteTrack, OC-SORT and BoT-SORT from Roboflow's ``trackers`` library
(Apache-2.0), behind one small interface, and the naive IoU baseline (:mod:`.naive`).

``yoloxkit`` does not implement the trackers; this module maps its settings onto the library's
arguments and its results back onto detection indices. docs/tracking.md says why this library
was chosen over boxmot and supervision, and how it is installed without ``opencv-python``.
"""

from __future__ import annotations

import warnings
from importlib import metadata
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from ..errors import TrackingError
from ..optional import import_optional
from .naive import IouTracker

__all__ = ["TRACKER_NAMES", "TrackerSettings", "AssociationTracker", "make_tracker", "TRACKERS_HINT",
           "CONFIDENT_SCORE", "default_score_thresholds"]

#: ``yoloxkit[track]`` cannot list ``trackers`` itself: its ``opencv-python`` requirement would
#: install a second OpenCV over ``opencv-python-headless`` (docs/tracking.md).
TRACKERS_HINT = ('pip install "yoloxkit[track]" && pip install --no-deps "trackers>=2.6,<2.7" '
                 "(--no-deps keeps OpenCV headless; see docs/tracking.md)")

#: tracker name -> (class in ``trackers``, our setting -> its argument)
_LIBRARY = {
    "bytetrack": ("ByteTrackTracker", {
        "track_thresh": "track_activation_threshold", "high_thresh": "high_conf_det_threshold",
        "match_thresh": "minimum_iou_threshold", "track_buffer": "lost_track_buffer",
        "min_hits": "minimum_consecutive_frames"}),
    "botsort": ("BoTSORTTracker", {
        "track_thresh": "track_activation_threshold", "high_thresh": "high_conf_det_threshold",
        "match_thresh": "minimum_iou_threshold_first_assoc", "track_buffer": "lost_track_buffer",
        "min_hits": "minimum_consecutive_frames"}),
    "ocsort": ("OCSORTTracker", {
        "high_thresh": "high_conf_det_threshold", "match_thresh": "minimum_iou_threshold",
        "track_buffer": "lost_track_buffer", "min_hits": "minimum_consecutive_frames"}),
    "sort": ("SORTTracker", {
        "track_thresh": "track_activation_threshold", "match_thresh": "minimum_iou_threshold",
        "track_buffer": "lost_track_buffer", "min_hits": "minimum_consecutive_frames"}),
}
_NAIVE = {"iou": {"track_thresh": "track_thresh", "match_thresh": "match_thresh"}}
#: the trackers in the order ``--tracker`` lists them; ``iou`` is the naive baseline
TRACKER_NAMES = (*_LIBRARY, *_NAIVE)


#: the score above which a detection is more likely right than wrong, for a detector whose scores
#: are calibrated probabilities (YOLOX's objectness x class probability; docs/tracking.md measures
#: how well the bundled nano's are); ByteTrack's own YOLOX demo splits high and low boxes here too
CONFIDENT_SCORE = 0.5


def default_score_thresholds(tracker: str, conf: float | None = None) -> dict[str, float]:
    """The score thresholds a tracker gets when none is given: a box starts a track, and is
    matched in the first (high) round, when the detector is more likely right than wrong about it
    (:data:`CONFIDENT_SCORE`), or at the detector's ``conf`` if that is higher; boxes between
    ``conf`` and that score only continue tracks (ByteTrack's second round). The naive ``iou``
    baseline keeps its own; each tracker gets only the thresholds it takes."""
    key = str(tracker).lower()
    if key not in _LIBRARY:
        return {}
    score = max(CONFIDENT_SCORE, float(conf or 0.0))
    return {k: score for k in ("track_thresh", "high_thresh") if k in _LIBRARY[key][1]}


@dataclass(frozen=True)
class TrackerSettings:
    """Tracker thresholds; ``None`` keeps the tracker's own default.

    ``track_thresh``: lowest score that starts a track. ``high_thresh``: the score that splits
    ByteTrack-style first (high) and second (low) association. ``match_thresh``: lowest IoU (or
    fused similarity, BoT-SORT) of a match. ``track_buffer``: frames (at 30 fps) a lost track is
    kept. ``min_hits``: matched frames before a track gets its id. ``frame_rate``: the video's.
    """

    track_thresh: float | None = None
    high_thresh: float | None = None
    match_thresh: float | None = None
    track_buffer: int | None = None
    min_hits: int | None = None
    frame_rate: float = 30.0

    def __post_init__(self) -> None:
        for name in ("track_thresh", "high_thresh", "match_thresh"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise TrackingError(f"{name} must be in [0, 1], got {value}")
        if self.track_buffer is not None and self.track_buffer < 0:
            raise TrackingError(f"track_buffer must be >= 0, got {self.track_buffer}")
        if self.min_hits is not None and self.min_hits < 1:
            raise TrackingError(f"min_hits must be >= 1, got {self.min_hits}")
        if not self.frame_rate > 0:
            raise TrackingError(f"frame_rate must be > 0, got {self.frame_rate}")

    def given(self) -> dict[str, float | int]:
        """The thresholds that were set (not ``None``), without the frame rate."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "frame_rate" and getattr(self, f.name) is not None}


class AssociationTracker(Protocol):
    """What :class:`yoloxkit.tracking.Tracker` needs of a tracker."""

    name: str

    def update(self, boxes: np.ndarray, scores: np.ndarray, frame: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Associate one frame's detections (``[N, 4]`` xyxy, ``[N]``): the indices of the
        tracked detections and their ids (>= 1)."""

    def reset(self) -> None:
        """Forget every track."""


def _warn_two_opencvs() -> None:
    """Warn once when ``opencv-python`` was installed over ``opencv-python-headless`` (both write
    the same ``cv2`` folder; a plain ``pip install trackers`` does this)."""
    global _CHECKED_OPENCV
    if _CHECKED_OPENCV:
        return
    _CHECKED_OPENCV = True
    found = []
    for name in ("opencv-python", "opencv-python-headless"):
        try:
            found.append(metadata.distribution(name).metadata["Name"])
        except metadata.PackageNotFoundError:
            pass
    if len(found) == 2:
        warnings.warn("both opencv-python and opencv-python-headless are installed, into one cv2 folder; fix it with "
                      "pip uninstall -y opencv-python && pip install --force-reinstall --no-deps opencv-python-headless",
                      stacklevel=3)


_CHECKED_OPENCV = False


class _LibraryTracker:
    """A tracker of the ``trackers`` library; its ids (from 0) are shifted to start at 1."""

    def __init__(self, name: str, arguments: dict[str, float | int]) -> None:
        self.name = name
        self._arguments = arguments
        self._uses_frame = name == "botsort"  # camera motion compensation; the others warn about frames
        self._tracker = self._build()

    def _build(self):
        _warn_two_opencvs()
        module = import_optional("trackers", f"tracking needs the trackers package: {TRACKERS_HINT}")
        supervision = import_optional("supervision", f"tracking needs the supervision package: {TRACKERS_HINT}")
        self._sv = supervision
        return getattr(module, _LIBRARY[self.name][0])(**self._arguments)

    def update(self, boxes: np.ndarray, scores: np.ndarray, frame: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        n = len(boxes)
        detections = self._sv.Detections(
            xyxy=np.asarray(boxes, dtype=np.float64).reshape(-1, 4), confidence=np.asarray(scores, dtype=np.float64),
            class_id=np.zeros(n, dtype=int), data={"index": np.arange(n)},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. a frame with no camera motion estimate
            result = self._tracker.update(detections, frame if self._uses_frame else None)
        ids = np.asarray(result.tracker_id, dtype=np.int64).reshape(-1)
        index = np.asarray(result.data.get("index", np.zeros(0)), dtype=np.int64).reshape(-1)
        keep = ids >= 0
        return index[keep], ids[keep] + 1

    def reset(self) -> None:
        self._tracker = self._build()


def make_tracker(name: str, settings: TrackerSettings | None = None) -> AssociationTracker:
    """The tracker called ``name`` (one of :data:`TRACKER_NAMES`) with ``settings``.

    Raises :class:`TrackingError` for an unknown name or a setting the tracker does not have,
    and :class:`MissingDependencyError` (with the install line) when ``trackers`` is missing.
    """
    settings = settings or TrackerSettings()
    key = str(name).lower()
    if key not in TRACKER_NAMES:
        raise TrackingError(f"unknown tracker {name!r}: choose one of {', '.join(TRACKER_NAMES)}")
    mapping = _LIBRARY[key][1] if key in _LIBRARY else _NAIVE[key]
    unknown = sorted(set(settings.given()) - set(mapping))
    if unknown:
        options = ", ".join("--" + u.replace("_", "-") for u in unknown)
        raise TrackingError(f"{options} does not apply to the {key} tracker (it takes "
                            f"{', '.join('--' + m.replace('_', '-') for m in mapping)})")
    arguments = {mapping[k]: v for k, v in settings.given().items()}
    if key in _NAIVE:
        return IouTracker(**arguments)
    return _LibraryTracker(key, {**arguments, "frame_rate": float(settings.frame_rate)})
