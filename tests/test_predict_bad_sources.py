"""``yoloxkit predict`` with bad files among good ones, ``--strict``, and Ctrl-C during a video."""

import json

import cv2
import numpy as np
import pytest

from yoloxkit.cli import main
from yoloxkit.infer import Detector

GOOD_KEYS = {"image", "width", "height", "detections"}  # DESIGN.md §3


@pytest.fixture
def mixed_folder(tmp_path, dog_jpg):
    """Three good pictures, a JPEG cut in half and a text file named .jpg, in this sorted order."""
    folder = tmp_path / "pics"
    folder.mkdir()
    data = dog_jpg.read_bytes()
    image = cv2.imread(str(dog_jpg))
    (folder / "a.jpg").write_bytes(data)
    (folder / "b_cut.jpg").write_bytes(data[: len(data) // 2])
    cv2.imwrite(str(folder / "c.png"), cv2.resize(image, (384, 288)))
    (folder / "d_text.jpg").write_text("these are notes, not a picture\n")
    (folder / "e.jpg").write_bytes(data)
    return folder


def _run(capsys, *argv):
    code = main(["predict", *map(str, argv), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("batch", ["1", "3"])
def test_bad_files_are_skipped_and_reported(batch, mixed_folder, tmp_path, capsys):
    save_dir, json_out = tmp_path / "out", tmp_path / "all.json"
    code, out, err = _run(capsys, mixed_folder, "--save-dir", save_dir, "--json-out", json_out, "--batch-size", batch)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in err
    assert lines[0].startswith("warning: ") and "b_cut.jpg" in lines[0] and "truncated" in lines[0]
    assert lines[1].startswith("warning: ") and "d_text.jpg" in lines[1]
    assert lines[2] == "error: 2 of 5 sources could not be read (b_cut.jpg, d_text.jpg)"
    assert [line.split(":")[0] for line in out.splitlines()[1:4]] == ["a.jpg", "c.png", "e.jpg"]
    assert sorted(p.name for p in save_dir.iterdir()) == ["a.jpg", "c.png", "e.jpg"]

    records = json.loads(json_out.read_text())
    assert [r["image"] for r in records] == ["a.jpg", "b_cut.jpg", "c.png", "d_text.jpg", "e.jpg"]
    good = [records[i] for i in (0, 2, 4)]
    assert all(set(r) == GOOD_KEYS for r in good)
    assert all(any(d["name"] == "dog" for d in r["detections"]) for r in good)
    assert (good[1]["width"], good[1]["height"]) == (384, 288)
    for record, name in ((records[1], "b_cut.jpg"), (records[3], "d_text.jpg")):
        assert set(record) == {"image", "source", "error"}
        assert record["source"] == str(mixed_folder / name) and name in record["error"]
    assert "truncated" in records[1]["error"]
    assert "wrote 3 results and 2 unreadable to" in out
    assert not list(tmp_path.glob("**/.*"))  # no temporary files left


@pytest.mark.parametrize("batch", ["1", "3"])
def test_strict_stops_at_the_first_bad_file(batch, mixed_folder, tmp_path, capsys):
    save_dir, json_out = tmp_path / "out", tmp_path / "strict.json"
    code, out, err = _run(capsys, mixed_folder, "--strict", "--save-dir", save_dir, "--json-out", json_out,
                          "--batch-size", batch)
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("error: cannot read image ") and "b_cut.jpg" in line
    records = json.loads(json_out.read_text())  # what was done is still written
    assert [r["image"] for r in records] == ["a.jpg", "b_cut.jpg"]
    assert set(records[0]) == GOOD_KEYS and "error" in records[1]
    assert sorted(p.name for p in save_dir.iterdir()) == ["a.jpg"]  # nothing after the bad file


def test_a_video_that_cannot_be_opened_is_skipped(tmp_path, dog_jpg, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    json_out = tmp_path / "v.json"
    code, out, err = _run(capsys, broken, dog_jpg, "--no-save", "--json-out", json_out)
    assert code == 2
    assert err.startswith("warning: cannot open video ") and "broken.mp4" in err
    assert err.strip().splitlines()[-1] == "error: 1 of 2 sources could not be read (broken.mp4)"
    records = json.loads(json_out.read_text())
    assert [r["image"] for r in records] == ["broken.mp4", "dog.jpg"] and "error" in records[0]


def _make_video(path, image, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 240))
    for i in range(frames):
        writer.write(cv2.resize(np.roll(image, 40 * i, axis=1), (320, 240)))
    writer.release()


def _frames_in(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_ctrl_c_during_a_video_keeps_the_frames_done(tmp_path, dog_jpg, capsys, monkeypatch):
    video = tmp_path / "clip.mp4"
    _make_video(video, cv2.imread(str(dog_jpg)), frames=8)
    done = 3
    calls = {"video": 0}
    original = Detector.predict_arrays

    def interrupt_after_some_frames(self, arrays, *args, **kwargs):
        if kwargs.get("image_names") is None:  # a video batch (images pass their names)
            if calls["video"] == done:
                raise KeyboardInterrupt
            calls["video"] += 1
        return original(self, arrays, *args, **kwargs)

    monkeypatch.setattr(Detector, "predict_arrays", interrupt_after_some_frames)
    save_dir, json_out = tmp_path / "out", tmp_path / "partial.json"
    code, out, err = _run(capsys, dog_jpg, video, dog_jpg, "--save-dir", save_dir, "--json-out", json_out)
    assert code == 130
    assert err.strip().splitlines() == ["interrupted"]
    assert f"clip.mp4: interrupted after {done} frames" in out
    # The partial video is complete and playable: closed and renamed into place.
    assert _frames_in(save_dir / "clip.mp4") == done
    capture = cv2.VideoCapture(str(save_dir / "clip.mp4"))
    assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (320, 240)
    capture.release()
    records = json.loads(json_out.read_text())
    assert [r["image"] for r in records] == ["dog.jpg"] + ["clip.mp4"] * done  # the second image never ran
    assert [r.get("frame") for r in records] == [None, 0, 1, 2]
    assert all(set(r) == GOOD_KEYS | {"frame"} for r in records[1:])
    assert not list(tmp_path.glob("**/.*"))  # no temporary video left behind
