"""Issue 11 item 13: convert-dataset respects the umask and copies images by default (the result is
independent of the source); ``--link hard|symlink`` on request, said in the output line."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from data_synth import make_voc
from yoloxkit.cli import main
from yoloxkit.data import load_dataset
from yoloxkit.data.convert import convert_dataset
from yoloxkit.data.writing import ImageLinker
from yoloxkit.errors import DatasetError


@pytest.fixture
def voc(tmp_path):
    return make_voc(tmp_path / "voc", {"train": {"a": [("dog", 11, 21, 40, 50, 0)], "b": [("cat", 1, 1, 30, 30, 0)]}})


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _convert(capsys, *argv) -> str:
    assert main(["convert-dataset", *map(str, argv)]) == 0
    return capsys.readouterr().out


def test_output_folder_follows_the_umask(voc, tmp_path, capsys, umask_022):
    _convert(capsys, voc, tmp_path / "out", "--to", "yolo")
    for path in [tmp_path / "out", tmp_path / "out" / "images", tmp_path / "out" / "images" / "train"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
    assert stat.S_IMODE((tmp_path / "out" / "data.yaml").stat().st_mode) == 0o644


def test_default_copies_images(voc, tmp_path, capsys):
    out = _convert(capsys, voc, tmp_path / "coco", "--to", "coco")
    assert "2 images copied" in out, out
    source = voc / "JPEGImages" / "a.jpg"
    copy = tmp_path / "coco" / "train" / "a.jpg"
    assert copy.read_bytes() == source.read_bytes()
    assert not copy.is_symlink() and copy.stat().st_ino != source.stat().st_ino
    original = source.read_bytes()
    copy.write_bytes(b"edited")
    assert source.read_bytes() == original  # editing the copy leaves the source alone


def test_hard_links_on_request(voc, tmp_path, capsys):
    out = _convert(capsys, voc, tmp_path / "yolo", "--to", "yolo", "--link", "hard")
    assert "2 images hard-linked to the source (editing one changes the original)" in out, out
    linked = tmp_path / "yolo" / "images" / "train" / "a.jpg"
    assert linked.stat().st_ino == (voc / "JPEGImages" / "a.jpg").stat().st_ino
    assert len(load_dataset(tmp_path / "yolo", "train").records) == 2


def test_symbolic_links_on_request(voc, tmp_path, capsys):
    out = _convert(capsys, voc, tmp_path / "yolo", "--to", "yolo", "--link", "symlink")
    assert "2 images symbolic links to the source" in out, out
    linked = tmp_path / "yolo" / "images" / "train" / "b.jpg"
    assert linked.is_symlink() and linked.resolve() == (voc / "JPEGImages" / "b.jpg").resolve()
    assert len(load_dataset(tmp_path / "yolo", "train").records) == 2


def test_hard_links_fall_back_to_copies_across_devices(voc, tmp_path, monkeypatch):
    def cross_device(*_args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    done = convert_dataset(voc, tmp_path / "coco", "coco", progress=False, link="hard")
    assert done.linker.counts == {"copy": 2, "hard": 0, "symlink": 0}
    assert "2 images copied" in done.describe()
    assert "hard links impossible here, Invalid cross-device link" in done.describe()
    copy = tmp_path / "coco" / "train" / "a.jpg"
    assert copy.stat().st_ino != (voc / "JPEGImages" / "a.jpg").stat().st_ino


def test_unknown_link_mode():
    with pytest.raises(DatasetError, match="--link: unknown mode 'soft'"):
        ImageLinker("soft")


def test_parser_rejects_unknown_link_mode(tmp_path, capsys):
    try:
        code = main(["convert-dataset", str(tmp_path), str(tmp_path / "x"), "--to", "voc", "--link", "soft"])
    except SystemExit as exc:  # argparse's usage error
        code = exc.code
    assert code not in (0, None)
    assert "--link" in capsys.readouterr().err
