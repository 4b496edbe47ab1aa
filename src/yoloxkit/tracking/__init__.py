"""Multi-object tracking: ``Tracker`` (a Detector plus SORT, ByteTrack, OC-SORT or BoT-SORT from
the ``trackers`` library, or the naive IoU baseline), MOTChallenge files, and their scores.

The ``trackers`` library is imported on first use (``yoloxkit[track]``, docs/tracking.md).
"""

from .counting import CountLine, LineCounter, parse_count_line
from .frames import FrameSource, open_frames
from .library import CONFIDENT_SCORE, TRACKER_NAMES, TrackerSettings, default_score_thresholds, make_tracker
from .metrics import GroundTruth, SequenceScores, TrackingReport, evaluate_tracking, load_ground_truth
from .mot import MotTable, read_mot, tracks_table, write_mot
from .naive import IouTracker
from .per_class import PerClassTracker
from .run import TrackRun, track_sequence
from .tracker import DEFAULT_TRACK_CONF, DEFAULT_TRACKER, Tracker

__all__ = [
    "Tracker",
    "DEFAULT_TRACKER",
    "DEFAULT_TRACK_CONF",
    "TRACKER_NAMES",
    "CountLine",
    "LineCounter",
    "parse_count_line",
    "CONFIDENT_SCORE",
    "default_score_thresholds",
    "PerClassTracker",
    "TrackerSettings",
    "make_tracker",
    "IouTracker",
    "FrameSource",
    "open_frames",
    "MotTable",
    "read_mot",
    "write_mot",
    "tracks_table",
    "GroundTruth",
    "SequenceScores",
    "TrackingReport",
    "evaluate_tracking",
    "load_ground_truth",
    "TrackRun",
    "track_sequence",
]
