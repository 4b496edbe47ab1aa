"""The tracking defaults' rule (a box starts a track where the detector is more likely right than
wrong, or at --conf if higher), per-class tracking, and the default tracker against the naive
baseline on a generated set (nano, detections made once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from yoloxkit import Detector
from yoloxkit.data.mot_sequence import sequence_frames
from yoloxkit.imaging import read_image
from yoloxkit.infer import Detections
from yoloxkit.synth import make_tracking_set
from yoloxkit.tracking import CONFIDENT_SCORE, Tracker, default_score_thresholds, evaluate_tracking, tracks_table

NAMES = ["person", "car"]


def test_rule_gives_each_tracker_only_the_thresholds_it_takes() -> None:
    assert default_score_thresholds("bytetrack") == {"track_thresh": CONFIDENT_SCORE, "high_thresh": CONFIDENT_SCORE}
    assert default_score_thresholds("ByteTrack", conf=0.1) == {"track_thresh": 0.5, "high_thresh": 0.5}
    assert default_score_thresholds("botsort", conf=0.65) == {"track_thresh": 0.65, "high_thresh": 0.65}
    assert default_score_thresholds("ocsort") == {"high_thresh": 0.5}
    assert default_score_thresholds("sort") == {"track_thresh": 0.5}
    assert default_score_thresholds("iou", conf=0.9) == {}  # the baseline keeps its own


def test_tracker_follows_the_detector_conf_and_given_settings_win() -> None:
    class FakeDetector:
        conf, names = 0.7, NAMES

    tracker = Tracker(FakeDetector(), "bytetrack")
    assert tracker.settings.track_thresh == 0.7 and tracker.settings.high_thresh == 0.7
    tracker = Tracker(None, "bytetrack", track_thresh=0.3)
    assert tracker.settings.track_thresh == 0.3 and tracker.settings.high_thresh == 0.5
    assert "track_thresh=0.3, high_thresh=0.5" in repr(tracker)
    iou = Tracker(None, "iou")
    assert iou.settings.track_thresh is None and iou.backend.track_thresh == 0.25


def _frame(boxes: list[list[float]], classes: list[int], scores: list[float] | None = None) -> Detections:
    scores = [0.9] * len(boxes) if scores is None else scores
    return Detections(np.array(boxes, dtype=float).reshape(-1, 4), np.array(scores), np.array(classes), NAMES,
                      width=640, height=480)


@pytest.mark.parametrize("name", ["iou", "bytetrack"])
def test_per_class_tracking_never_matches_across_classes(name: str) -> None:
    box = [100, 100, 160, 200]
    frames = [_frame([box], [0])] * 4 + [_frame([box], [1])] * 4  # the same box changes class

    def ids(per_class: bool) -> list[tuple[int, ...]]:
        tracker = Tracker(None, name, per_class=per_class)
        return [tuple(tracker.update_detections(f).track_ids.tolist()) for f in frames]

    agnostic, per_class = ids(False), ids(True)
    assert len({i for frame in agnostic for i in frame}) == 1  # class-agnostic: one track throughout
    seen = [i for frame in per_class for i in frame]
    first, second = seen[0], seen[-1]
    assert first != second and set(seen) == {first, second}  # a new track for the new class
    assert all(frame in ((first,), ()) for frame in per_class[:4])


def test_per_class_ids_are_unique_and_classes_age_apart() -> None:
    tracker = Tracker(None, "bytetrack", per_class=True, track_buffer=3)
    person, car = [100, 100, 160, 200], [400, 100, 520, 180]
    both = _frame([person, car], [0, 1])
    results = [tracker.update_detections(both) for _ in range(3)]
    assert sorted(results[-1].track_ids.tolist()) == [1, 2]  # one id per (class, track), from 1
    for _ in range(10):  # the car leaves; its class's tracker still sees every frame and drops it
        tracker.update_detections(_frame([person], [0]))
    again = [tracker.update_detections(both) for _ in range(3)][-1]
    car_id = again.track_ids[again.class_ids == 1].tolist()
    assert car_id and car_id[0] > 2  # a new identity after the buffer, not the old one
    assert again.track_ids[again.class_ids == 0].tolist() == results[-1].track_ids[results[-1].class_ids == 0].tolist()


@pytest.fixture(scope="module")
def detected_set(coco_mini: Path, tmp_path_factory) -> tuple[Path, dict[str, list[Detections]]]:
    out = tmp_path_factory.mktemp("defaults") / "set"
    make_tracking_set(coco_mini, "val2017", out, sequences=4, frames=24, seed=0, progress=False)
    detector = Detector(size=416, conf=0.1)
    found = {}
    for sequence in sorted(p.name for p in out.iterdir() if p.is_dir()):
        found[sequence] = [detector.predict_arrays([read_image(p)])[0] for p in sequence_frames(out / sequence)]
    return out, found


def test_default_tracker_beats_the_naive_baseline(detected_set) -> None:
    """The acceptance of issue 30 on a small set: IDF1 and ID switches better, MOTA not worse."""
    set_dir, found = detected_set

    def scores(name: str):
        tables = {}
        for sequence, detections in found.items():
            tracker = Tracker(None, name)
            tables[sequence] = tracks_table([tracker.update_detections(d) for d in detections])
        return evaluate_tracking(set_dir, tables).combined

    default, naive = scores("bytetrack"), scores("iou")
    assert default.idf1 > naive.idf1
    assert default.idsw < naive.idsw
    assert default.mota >= naive.mota
