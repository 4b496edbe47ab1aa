"""Expanding predict SOURCE arguments."""

import pytest

from yoloxkit.errors import ImageReadError
from yoloxkit.infer.sources import Source, expand_sources


def test_folders_files_videos_webcams_and_globs(tmp_path, monkeypatch):
    folder = tmp_path / "pics"
    (folder / "nested").mkdir(parents=True)
    for name in ["b.PNG", "a.jpg", "notes.txt", "nested/c.jpg"]:
        (folder / name).write_bytes(b"x")
    (tmp_path / "clip.MOV").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    sources = expand_sources(["pics", "clip.MOV", "0", "pics/*.jpg"])
    assert [(s.kind, s.name) for s in sources] == [
        ("image", "a.jpg"), ("image", "b.PNG"), ("video", "clip.MOV"), ("webcam", "webcam0"), ("image", "a.jpg"),
    ]
    assert sources[3] == Source("webcam", index=0)
    (tmp_path / "1").write_bytes(b"x")  # a file called 1 is a file, not webcam 1
    assert expand_sources(["1"])[0].kind == "image"


@pytest.mark.parametrize("argument, message", [("missing.jpg", "source not found"), ("empty", "no image files"),
                                               ("*.gif", "no image or video files match")])
def test_errors_name_the_argument(argument, message, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageReadError, match=message):
        expand_sources([argument])
