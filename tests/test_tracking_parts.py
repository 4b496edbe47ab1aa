"""Tracking parts without a detector: MOT files, the naive baseline, the library trackers on
known boxes, and the metrics (an id switch is counted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from yoloxkit.errors import TrackingError
from yoloxkit.infer import Detections
from yoloxkit.tracking import (
    IouTracker,
    MotTable,
    Tracker,
    TrackerSettings,
    evaluate_tracking,
    make_tracker,
    read_mot,
    write_mot,
)
from yoloxkit.tracking.mot import format_mot_rows, mot_writer
from yoloxkit.tracking.naive import box_iou_matrix, greedy_iou_matches

NAMES = ["person", "car"]


def _pan(frames: int = 30, step: float = 9.0) -> list[np.ndarray]:
    """Three boxes moving left together, as under a camera pan: ``[3, 4]`` xyxy per frame."""
    start = np.array([[300, 100, 360, 220], [420, 140, 470, 240], [520, 90, 600, 230]], dtype=np.float64)
    return [start - [step * t, 0, step * t, 0] for t in range(frames)]


def _dets(boxes: np.ndarray, scores=None) -> Detections:
    scores = np.full(len(boxes), 0.9) if scores is None else scores
    return Detections(boxes, scores, np.zeros(len(boxes)), NAMES, width=640, height=480)


def _gt_table(per_frame: list[np.ndarray], ids=None) -> MotTable:
    frames, track_ids, boxes = [], [], []
    for number, frame in enumerate(per_frame, start=1):
        for k, box in enumerate(frame):
            frames.append(number)
            track_ids.append(k + 1 if ids is None else ids[number - 1][k])
            boxes.append([box[0], box[1], box[2] - box[0], box[3] - box[1]])
    return MotTable(frames, track_ids, boxes, np.ones(len(frames)))


# --- MOT files ----------------------------------------------------------------------------


def test_mot_file_round_trips(tmp_path: Path) -> None:
    table = _gt_table(_pan(5))
    table = MotTable(table.frames, table.ids, table.boxes + 0.123, np.linspace(0.3, 0.9, len(table)))
    path = write_mot(tmp_path / "seq.txt", table)
    back = read_mot(path)
    order = np.lexsort((table.ids, table.frames))
    np.testing.assert_array_equal(back.frames, table.frames[order])
    np.testing.assert_array_equal(back.ids, table.ids[order])
    np.testing.assert_allclose(back.boxes, table.boxes[order], atol=0.005)
    np.testing.assert_allclose(back.scores, table.scores[order], atol=5e-5)
    assert path.read_text().splitlines()[0].endswith(",-1,-1,-1")
    assert write_mot(tmp_path / "again.txt", back).read_text() == path.read_text()


def test_format_rows_skip_untracked_and_sort_by_id() -> None:
    boxes = np.array([[0, 0, 10, 20], [5, 5, 15, 15], [1, 1, 2, 2]], dtype=np.float32)
    rows = format_mot_rows(7, np.array([4, 2, -1]), boxes, np.array([0.5, 0.6, 0.7]))
    assert rows == ["7,2,5.00,5.00,10.00,10.00,0.6000,-1,-1,-1", "7,4,0.00,0.00,10.00,20.00,0.5000,-1,-1,-1"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,1,10,10,5\n", "at least 6"),
        ("1,1,10,10,5,5,1\n1,2,10,10,5,5\n", "columns, but the rows before have 7"),
        ("1,1,10,ten,5,5,1\n", "column 4 is not a number"),
        ("0,1,10,10,5,5,1\n", "the frame (column 1) must be a whole number >= 1"),
        ("1.5,1,10,10,5,5,1\n", "the frame (column 1)"),
        ("1,-3,10,10,5,5,1\n", "the id (column 2)"),
        ("1,1,10,10,0,5,1\n", "no area"),
        ("1,1,10,10,5,5,1\n1,1,20,20,5,5,1\n", "id 1 appears twice in frame 1"),
        ("1,1,10,10,nan,5,1\n", "not finite"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(TrackingError) as info:
        read_mot(path)
    assert message in str(info.value)
    assert f"{path}:" in str(info.value) and "\n" not in str(info.value)


def test_unreadable_mot_files(tmp_path: Path) -> None:
    with pytest.raises(TrackingError, match="not found"):
        read_mot(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x81\x00\xff" * 20)
    with pytest.raises(TrackingError, match="not a MOT text file: .*NUL byte"):
        read_mot(binary)
    assert len(read_mot(_write(tmp_path / "empty.txt", ""))) == 0


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_mot_writer_keeps_rows_when_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        with mot_writer(target) as rows:
            rows.write("1,1,0.00,0.00,1.00,1.00,0.9000,-1,-1,-1\n")
            raise KeyboardInterrupt
    assert target.read_text().startswith("1,1,")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


# --- the naive baseline ---------------------------------------------------------------------


def test_box_iou_and_greedy_matches() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 5], [21, 21, 31, 31], [100, 100, 110, 110]])
    iou = box_iou_matrix(a, b)
    assert iou[0, 0] == pytest.approx(0.5) and iou[0, 2] == 0
    assert greedy_iou_matches(iou, 0.3) == [(1, 1), (0, 0)]
    assert greedy_iou_matches(iou, 0.6) == [(1, 1)]
    assert greedy_iou_matches(np.zeros((0, 3)), 0.3) == []


def test_iou_tracker_links_overlaps_and_loses_a_missed_object() -> None:
    tracker = IouTracker(track_thresh=0.5, match_thresh=0.3)
    boxes = _pan(3, step=5)
    _, first = tracker.update(boxes[0], np.full(3, 0.9))
    index, second = tracker.update(boxes[1], np.full(3, 0.9))
    assert second.tolist() == first.tolist() == [1, 2, 3]
    tracker.update(boxes[2][:0], np.zeros(0))  # a frame where nothing was found
    _, after = tracker.update(boxes[2], np.full(3, 0.9))
    assert after.tolist() == [4, 5, 6]  # no memory: new ids
    index, ids = tracker.update(boxes[2], np.array([0.9, 0.1, 0.9]))
    assert index.tolist() == [0, 2]  # below track_thresh: not tracked


# --- the library trackers -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bytetrack", "botsort", "ocsort", "sort"])
def test_identity_is_kept_across_a_pan(name: str) -> None:
    tracker = Tracker(None, name, min_hits=1)
    ids_per_frame = []
    for boxes in _pan(30):
        tracked = tracker.update_detections(_dets(boxes), np.zeros((480, 640, 3), np.uint8))
        by_box = {tuple(np.round(b).astype(int)): t for b, t in zip(tracked.boxes, tracked.track_ids)}
        ids_per_frame.append([by_box.get(tuple(np.round(b).astype(int))) for b in boxes])
    settled = ids_per_frame[3:]
    for k in range(3):
        assert len({frame[k] for frame in settled}) == 1, f"object {k} changed id under {name}: {settled}"
    assert len({settled[0][k] for k in range(3)}) == 3
    assert all(t is not None and t >= 1 for frame in settled for t in frame)


def test_bytetrack_keeps_an_identity_through_a_missed_frame_the_baseline_loses() -> None:
    frames = _pan(20, step=4)
    gone = {8, 9}  # object 0 is not detected in these frames (an occlusion)
    results = {}
    for name in ("bytetrack", "iou"):
        tracker = Tracker(None, name)
        seen = []
        for t, boxes in enumerate(frames):
            keep = [k for k in range(3) if not (k == 0 and t in gone)]
            tracked = tracker.update_detections(_dets(boxes[keep]))
            match = [t_id for b, t_id in zip(tracked.boxes, tracked.track_ids) if np.allclose(b, boxes[0], atol=0.5)]
            seen.extend(match)
        results[name] = set(seen)
    assert len(results["bytetrack"]) == 1
    assert len(results["iou"]) == 2


def test_detections_carry_track_ids_into_json_and_plot() -> None:
    tracker = Tracker(None, "bytetrack", min_hits=1)
    for boxes in _pan(3):
        tracked = tracker.update_detections(_dets(boxes))
    record = tracked.to_json()
    assert [d["track_id"] for d in record["detections"]] == tracked.track_ids.tolist()
    assert "#" in repr(tracked)
    image = np.full((480, 640, 3), 255, np.uint8)
    plain = _dets(tracked.boxes).plot(image)
    drawn = tracked.plot(image, trails=tracker.visible_trails(tracked))
    assert (drawn != plain).any()  # the ids (colours, labels) and trails change the picture
    assert all(len(v) >= 2 for v in tracker.visible_trails(tracked).values())


def test_tracker_settings_are_checked() -> None:
    with pytest.raises(TrackingError, match="unknown tracker 'deepsort'"):
        make_tracker("deepsort")
    with pytest.raises(TrackingError, match="--track-thresh does not apply to the ocsort tracker"):
        make_tracker("ocsort", TrackerSettings(track_thresh=0.5))
    with pytest.raises(TrackingError, match="match_thresh must be in"):
        TrackerSettings(match_thresh=1.5)
    with pytest.raises(TrackingError, match="unknown tracker setting"):
        Tracker(None, "sort", colour="red")
    with pytest.raises(TrackingError, match="no detector"):
        Tracker(None).update(np.zeros((8, 8, 3), np.uint8))


# --- metrics ----------------------------------------------------------------------------------


def test_perfect_tracks_score_one_and_an_id_switch_is_counted() -> None:
    boxes = _pan(10)
    gt = _gt_table(boxes)
    perfect = evaluate_tracking({"seq": gt}, {"seq": gt})
    assert perfect.combined.mota == pytest.approx(1.0) and perfect.combined.idf1 == pytest.approx(1.0)
    assert perfect.combined.idsw == 0 and perfect.combined.gt_ids == 3
    # object 1 takes a new id (7) from frame 6 on: one ID switch, IDF1 below 1, no FP or FN
    switched = _gt_table(boxes, ids=[[1, 2 if t < 5 else 7, 3] for t in range(10)])
    report = evaluate_tracking({"seq": gt}, {"seq": switched})
    assert report.combined.idsw == 1
    assert report.combined.fp == 0 and report.combined.fn == 0
    assert report.combined.idf1 < 1.0 and report.combined.mota == pytest.approx(1 - 1 / 30)
    # two objects swap ids: two switches
    swapped = _gt_table(boxes, ids=[[1, 2, 3] if t < 5 else [2, 1, 3] for t in range(10)])
    assert evaluate_tracking({"seq": gt}, {"seq": swapped}).combined.idsw == 2


def test_empty_prediction_is_all_misses() -> None:
    gt = _gt_table(_pan(4))
    report = evaluate_tracking({"seq": gt}, {"seq": MotTable.empty()})
    assert report.combined.fn == 12 and report.combined.fp == 0 and report.combined.mota == 0.0


def test_mismatched_ground_truth_and_predictions(tmp_path: Path) -> None:
    gt = _gt_table(_pan(4))
    late = MotTable(gt.frames + 10, gt.ids, gt.boxes, gt.scores, path="late.txt")
    with pytest.raises(TrackingError, match="frame 14 is past the end of sequence seq"):
        evaluate_tracking({"seq": gt}, {"seq": late})
    gt_dir = tmp_path / "gt"
    for name in ("A", "B"):
        (gt_dir / name / "gt").mkdir(parents=True)
        write_mot(gt_dir / name / "gt" / "gt.txt", gt)
    pred = tmp_path / "pred"
    pred.mkdir()
    write_mot(pred / "A.txt", gt)
    with pytest.raises(TrackingError, match="no prediction for sequence B"):
        evaluate_tracking(gt_dir, pred)
    write_mot(pred / "B.txt", gt)
    write_mot(pred / "C.txt", gt)
    with pytest.raises(TrackingError, match="C.txt matches no ground-truth sequence"):
        evaluate_tracking(gt_dir, pred)
    (pred / "C.txt").unlink()
    assert [s.name for s in evaluate_tracking(gt_dir, pred).sequences] == ["A", "B"]
    with pytest.raises(TrackingError, match="one file but the ground truth has 2 sequences"):
        evaluate_tracking(gt_dir, pred / "A.txt")
