"""``track --count-line`` end to end: a clip of a dog crossing a line, with nano; the count is
in the summary line, in every JSON record and drawn on the video. Per-class tracking from the
command line. A malformed line is one error line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from yoloxkit.cli import main

SIZE = (480, 240)


@pytest.fixture(scope="module")
def crossing_clip(dog_jpg: Path, tmp_path_factory) -> Path:
    """16 frames: the demo picture's dog, shrunk, moving left to right over a grey background,
    across the vertical line x=240 once."""
    dog = cv2.imread(str(dog_jpg))[200:550, 120:330]  # the dog in the demo picture
    dog = cv2.resize(dog, (105, 175))
    path = tmp_path_factory.mktemp("clip") / "crossing.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    for x in np.linspace(10, 365, 16).astype(int):
        frame = np.full((SIZE[1], SIZE[0], 3), 114, np.uint8)
        frame[30:205, x:x + 105] = dog
        writer.write(frame)
    writer.release()
    return path


def test_count_line_counts_the_crossing_in_summary_json_and_video(crossing_clip: Path, tmp_path: Path,
                                                                  capsys) -> None:
    frames_json, videos = tmp_path / "frames.json", tmp_path / "videos"
    # drawn bottom to top: a left-to-right crossing is "out" (in = from the line's right to its left)
    code = main(["track", str(crossing_clip), "--size", "320", "--count-line", "240,235,240,5", "--tracker", "iou",
                 "--per-class", "--json-out", str(frames_json), "--save-dir", str(videos), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    records = json.loads(frames_json.read_text())
    last = records[-1]["line_count"]
    assert last["line"] == [240, 235, 240, 5]
    assert last["in"] == 0 and last["out"] == 1 and last["per_class"] == {"dog": {"in": 0, "out": 1}}
    crossings = [(r["frame"], r["line_count"]["crossed_out"]) for r in records if r["line_count"]["crossed_out"]]
    assert len(crossings) == 1 and 8 <= crossings[0][0] <= 16  # counted once, when the box has passed the line
    assert "line crossings in 0 out 1 (dog 0/1, in/out)" in out and "per_class" in out
    video = cv2.VideoCapture(str(videos / "crossing.mp4"))
    ok, first = video.read()
    assert ok
    line_pixels = first[40:200, 239:242].astype(int)
    assert (np.abs(line_pixels - [0, 255, 255]).sum(axis=2) < 120).mean() > 0.5  # the yellow line is drawn


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "5,5,5,5", "1,2,3,nan"])
def test_malformed_count_line_is_one_line_and_exit_2(text: str, crossing_clip: Path, capsys) -> None:
    code = main(["track", str(crossing_clip), f"--count-line={text}", "--no-save", "--no-progress"])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2 and len(lines) == 1 and "--count-line must be x1,y1,x2,y2" in lines[0], err
