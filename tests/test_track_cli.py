"""``yoloxkit track`` and ``track-eval`` end to end on generated sequences (nano, small input):
the outputs, their agreement with the Python API, Ctrl-C, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from yoloxkit import Detector, Tracker
from yoloxkit.cli import main
from yoloxkit.synth import make_tracking_set
from yoloxkit.tracking import evaluate_tracking, read_mot, tracks_table

SIZE = "256"


@pytest.fixture(scope="module")
def track_set(coco_mini: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trackset") / "set"
    make_tracking_set(coco_mini, "val2017", out, sequences=2, frames=8, frame_size=(320, 240), seed=3, progress=False)
    return out


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_track_outputs_read_back_by_track_eval_match_the_python_api(track_set: Path, tmp_path: Path, capsys) -> None:
    sequences = ["SYN-01", "SYN-02"]
    mot_dir, scores = tmp_path / "mot", tmp_path / "scores.json"
    code, out, _ = _run(["track", *(str(track_set / s) for s in sequences), "--size", SIZE, "--mot-out", str(mot_dir),
                         "--json-out", str(tmp_path / "frames.json"), "--save-dir", str(tmp_path / "videos"),
                         "--no-progress"], capsys)
    assert code == 0, out
    assert "SYN-01: 8 frames" in out and "Tracker(bytetrack" in out
    code, table, _ = _run(["track-eval", "--gt", str(track_set), "--pred", str(mot_dir), "--json-out", str(scores)],
                          capsys)
    assert code == 0
    assert "MOTA" in table and "COMBINED" in table and "SYN-02" in table
    from_files = json.loads(scores.read_text())

    detector = Detector(size=int(SIZE), conf=0.1)
    tracker = Tracker(detector)
    tables = {s: tracks_table(tracker.track(track_set / s)) for s in sequences}
    for s in sequences:  # the file holds exactly the Python API's rows
        written = read_mot(mot_dir / f"{s}.txt")
        np.testing.assert_array_equal(written.ids, tables[s].ids)
        np.testing.assert_array_equal(written.boxes, tables[s].boxes)
    in_memory = evaluate_tracking(track_set, tables).to_json()
    assert in_memory == from_files
    assert from_files["combined"]["gt_ids"] > 0 and from_files["combined"]["idf1"] > 0.1

    records = json.loads((tmp_path / "frames.json").read_text())
    assert [(r["image"], r["frame"]) for r in records[:2]] == [("SYN-01", 1), ("SYN-01", 2)]
    assert len(records) == 16
    tracked = [d for r in records for d in r["detections"]]
    assert tracked and all(d["track_id"] >= 1 for d in tracked)
    video = cv2.VideoCapture(str(tmp_path / "videos" / "SYN-01.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 8 and video.read()[0]


def test_ctrl_c_keeps_a_playable_video_and_the_rows_so_far(track_set: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    calls = {"n": 0}
    real_update = Tracker.update

    def update(self, frame):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_update(self, frame)

    monkeypatch.setattr(Tracker, "update", update)
    mot, frames_json = tmp_path / "rows.txt", tmp_path / "frames.json"
    code, out, err = _run(["track", str(track_set / "SYN-01"), "--size", SIZE, "--mot-out", str(mot), "--json-out",
                           str(frames_json), "--save-dir", str(tmp_path), "--no-progress", "--min-hits", "1"], capsys)
    assert code == 130
    assert "interrupted after 4 frames" in out and "interrupted" in err
    rows = read_mot(mot)
    assert len(rows) > 0 and rows.last_frame <= 4
    assert len(json.loads(frames_json.read_text())) == 4
    video = cv2.VideoCapture(str(tmp_path / "SYN-01.mp4"))
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames == 4
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_sliced_detector_tracks(track_set: Path) -> None:
    detector = Detector(size=160, conf=0.1, slice_size=160)
    frame = cv2.imread(str(track_set / "SYN-01" / "img1" / "000001.jpg"))
    tracker = Tracker(detector, "sort", min_hits=1)
    results = [tracker.update(frame) for _ in range(3)]
    assert results[-1].track_ids is not None and len(results[-1]) == len(results[-1].track_ids)


def _one_error_line(code: int, err: str) -> str:
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("kind", ["missing", "garbage video", "text file", "image", "webcam", "empty folder"])
def test_bad_sources_give_one_line_and_exit_2(kind: str, tmp_path: Path, dog_jpg: Path, capsys) -> None:
    if kind == "missing":
        source, expect = tmp_path / "nope.mp4", "source not found"
    elif kind == "garbage video":
        source, expect = tmp_path / "broken.mp4", "broken.mp4"
        source.write_bytes(b"\x00not a video" * 100)
    elif kind == "text file":
        source, expect = tmp_path / "notes.txt", "not a video file"
        source.write_text("hello")
    elif kind == "image":
        source, expect = dog_jpg, "an image"
    elif kind == "webcam":
        source, expect = "7", "webcam 7"
    else:
        source, expect = tmp_path / "frames", "no image frames"
        source.mkdir()
    code, _, err = _run(["track", str(source), "--no-save", "--no-progress"], capsys)
    assert expect in _one_error_line(code, err)


def test_track_argument_errors(track_set: Path, tmp_path: Path, capsys) -> None:
    seqs = [str(track_set / "SYN-01"), str(track_set / "SYN-02")]
    code, _, err = _run(["track", *seqs, "--mot-out", str(tmp_path / "one.txt"), "--no-save"], capsys)
    assert "give a folder" in _one_error_line(code, err)
    code, _, err = _run(["track", seqs[0], "--tracker", "ocsort", "--track-thresh", "0.5", "--no-save"], capsys)
    assert "does not apply to the ocsort tracker" in _one_error_line(code, err)
    with pytest.raises(SystemExit) as info:
        main(["track", seqs[0], "--tracker", "deepsort"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case, expect",
    [
        ("malformed", "SYN-01.txt:2: column 3 is not a number"),
        ("columns", "SYN-01.txt:2: 6 columns, but the rows before have 10"),
        ("past the end", "past the end of sequence SYN-01"),
        ("missing sequence", "no prediction for sequence SYN-02"),
        ("unknown sequence", "matches no ground-truth sequence"),
        ("missing gt", "ground truth not found"),
    ],
)
def test_track_eval_bad_input_gives_one_line_and_exit_2(case: str, expect: str, track_set: Path, tmp_path: Path,
                                                         capsys) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    good = "1,1,10.00,10.00,20.00,30.00,0.9000,-1,-1,-1\n"
    gt = track_set
    files = {"SYN-01": good + "2,1,x,10,20,30,0.9,-1,-1,-1\n", "SYN-02": good}
    if case == "columns":
        files["SYN-01"] = good + "2,1,10,10,20,30\n"
    elif case == "past the end":
        files["SYN-01"] = good + "99,1,10,10,20,30,0.9,-1,-1,-1\n"
    elif case == "missing sequence":
        files = {"SYN-01": good}
    elif case == "unknown sequence":
        files = {"SYN-01": good, "SYN-02": good, "SYN-77": good}
    elif case == "missing gt":
        gt = tmp_path / "no-gt"
    for name, text in files.items():
        (pred / f"{name}.txt").write_text(text)
    code, _, err = _run(["track-eval", "--gt", str(gt), "--pred", str(pred)], capsys)
    assert expect in _one_error_line(code, err)


def test_track_eval_reports_a_switch_from_files(track_set: Path, tmp_path: Path, capsys) -> None:
    gt = read_mot(track_set / "SYN-01" / "gt" / "gt.txt")
    keep = gt.scores != 0
    ids, counts = np.unique(gt.ids[keep], return_counts=True)
    longest = int(ids[np.argmax(counts)])  # this object takes id 100 half-way through its track
    middle = int(np.median(gt.frames[keep][gt.ids[keep] == longest]))
    lines = []
    for f, i, box in zip(gt.frames[keep], gt.ids[keep], gt.boxes[keep]):
        new_id = 100 if (i == longest and f > middle) else i
        lines.append(f"{f},{new_id},{box[0]},{box[1]},{box[2]},{box[3]},1,-1,-1,-1")
    (tmp_path / "SYN-01.txt").write_text("\n".join(lines) + "\n")
    code, out, _ = _run(["track-eval", "--gt", str(track_set / "SYN-01"), "--pred", str(tmp_path / "SYN-01.txt"),
                         "--json-out", str(tmp_path / "s.json")], capsys)
    assert code == 0
    combined = json.loads((tmp_path / "s.json").read_text())["combined"]
    assert combined["idsw"] == 1 and combined["fp"] == 0 and combined["fn"] == 0
    assert combined["mota"] < 1.0 and combined["idf1"] < 1.0


def test_missing_trackers_library_gives_the_install_line(track_set: Path, monkeypatch, capsys) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "trackers", None)  # `import trackers` now raises ImportError
    monkeypatch.setitem(sys.modules, "trackers.eval", None)
    code, _, err = _run(["track", str(track_set / "SYN-01"), "--no-save", "--no-progress"], capsys)
    line = _one_error_line(code, err)
    assert 'pip install "yoloxkit[track]" && pip install --no-deps "trackers' in line
    code, _, err = _run(["track-eval", "--gt", str(track_set), "--pred", str(track_set)], capsys)
    assert "track-eval needs the trackers package" in _one_error_line(code, err)
    code, out, _ = _run(["track", str(track_set / "SYN-01"), "--tracker", "iou", "--no-save", "--no-progress",
                         "--size", SIZE], capsys)
    assert code == 0 and "SYN-01: 8 frames" in out  # the naive baseline needs no library
