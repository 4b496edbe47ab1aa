"""``yoloxkit predict``: images, folders, videos, JSON output and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from yoloxkit.cli import main
from yoloxkit.weights import bundled_weights_path


def _run(capsys, *argv):
    code = main(["predict", *map(str, argv), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def truncated_jpg(tmp_path, dog_jpg):
    data = dog_jpg.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_dog_jpg_with_bundled_weights(capsys, tmp_path, dog_jpg):
    save_dir = tmp_path / "out"
    json_out = tmp_path / "dets.json"
    code, out, err = _run(capsys, dog_jpg, "--save-dir", save_dir, "--json-out", json_out)
    assert code == 0, err
    first, line = out.splitlines()[:2]
    assert first == "model yolox-nano, input 416x416, weights bundled, backend torch, device cpu"
    assert line.startswith("dog.jpg: ") and "dog" in line and "bicycle" in line
    assert str(save_dir / "dog.jpg") in line
    annotated = cv2.imread(str(save_dir / "dog.jpg"))
    assert annotated.shape == (576, 768, 3)
    [record] = json.loads(json_out.read_text())
    assert (record["image"], record["width"], record["height"]) == ("dog.jpg", 768, 576)
    best = {}
    for d in record["detections"]:
        best[d["name"]] = max(d["score"], best.get(d["name"], 0.0))
    assert best["dog"] >= 0.5 and best["bicycle"] >= 0.5
    assert max(best.get("car", 0.0), best.get("truck", 0.0)) >= 0.5
    assert not list(tmp_path.glob("**/.*"))  # no temporary files left behind


def test_demo_class_filter_and_no_save(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, "--demo", "--classes", "dog,bicycle", "--no-save")
    assert code == 0, err
    line = out.splitlines()[1]
    assert line.startswith("dog.jpg: dog ") and "car" not in line and "->" not in line
    assert not (tmp_path / "runs").exists()


def test_folder_and_video(capsys, tmp_path, dog_jpg):
    folder = tmp_path / "pics"
    folder.mkdir()
    image = cv2.imread(str(dog_jpg))
    cv2.imwrite(str(folder / "b.png"), cv2.resize(image, (384, 288)))
    (folder / "a.jpg").write_bytes(dog_jpg.read_bytes())
    (folder / "notes.txt").write_text("ignored: not an image")
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 240))
    for i in range(5):
        writer.write(cv2.resize(np.roll(image, 40 * i, axis=1), (320, 240)))
    writer.release()
    save_dir, json_out = tmp_path / "out", tmp_path / "all.json"
    code, out, err = _run(capsys, folder, video, "--save-dir", save_dir, "--json-out", json_out, "--batch-size", "2")
    assert code == 0, err
    lines = out.splitlines()[1:]  # after the model line
    assert lines[0].startswith("a.jpg: dog") and lines[1].startswith("b.png: dog")
    assert lines[2].startswith("clip.mp4: 5 frames")
    assert sorted(p.name for p in save_dir.iterdir()) == ["a.jpg", "b.png", "clip.mp4"]
    capture = cv2.VideoCapture(str(save_dir / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (320, 240)
    capture.release()
    records = json.loads(json_out.read_text())
    assert [r["image"] for r in records] == ["a.jpg", "b.png"] + ["clip.mp4"] * 5
    assert [r.get("frame") for r in records] == [None, None, 0, 1, 2, 3, 4]
    assert all(r["width"] == 320 for r in records[2:])
    assert any(d["name"] == "dog" for d in records[2]["detections"])


@pytest.mark.parametrize("case", ["missing", "not-an-image", "truncated", "empty-folder", "bad-video", "webcam"])
def test_bad_sources_give_one_line(case, capsys, tmp_path, truncated_jpg):
    source = {
        "missing": tmp_path / "nope.jpg",
        "not-an-image": tmp_path / "notes.jpg",
        "truncated": truncated_jpg,
        "empty-folder": tmp_path / "empty",
        "bad-video": tmp_path / "broken.mp4",
        "webcam": Path("97"),  # no such camera
    }[case]
    (tmp_path / "notes.jpg").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 50)
    code, out, err = _run(capsys, source, "--save-dir", tmp_path / "out")
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and source.name in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--device", "cuda"], "CUDA is not available"),
        (["--backend", "tensorrt"], "unknown backend"),
        (["--classes", "unicorn"], "unknown class"),
        (["--model", "yolox-tiny", "--weights", str(bundled_weights_path())], "does not fit"),
        (["--size", "100"], "size"),
        ([], "no SOURCE"),
    ],
)
def test_bad_options_give_one_line(argv, message, capsys, monkeypatch, dog_jpg):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sources = [dog_jpg] if argv else []
    code, out, err = _run(capsys, *sources, *argv, "--no-save")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_truncated_jpeg_in_a_real_process(truncated_jpg, tmp_path):
    """No native decoder warnings or traceback reach stderr: exactly one line."""
    proc = subprocess.run(
        [sys.executable, "-m", "yoloxkit", "predict", str(truncated_jpg), "--save-dir", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "cut.jpg" in proc.stderr
    assert proc.stderr.startswith("error: ") and "truncated" in proc.stderr


def test_first_line_names_model_input_size_and_weights(capsys, dog_jpg):
    code, out, err = _run(capsys, dog_jpg, "--size", "320", "--weights", "yolox-nano", "--no-save")
    assert code == 0, err
    assert out.splitlines()[0] == "model yolox-nano, input 320x320, weights yolox-nano, backend torch, device cpu"
    assert out.splitlines()[1].startswith("dog.jpg: ")
