"""Atomic writes: complete files only, ordinary permissions, nothing left behind on failure."""

import os
import stat

import pytest

from yoloxkit.io import atomic_path, atomic_write_text, read_json_mapping


def test_atomic_write_creates_file_with_umask_permissions(tmp_path):
    target = atomic_write_text("hello", tmp_path / "sub" / "out.txt")
    assert target.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_temp_file_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "video.mp4") as tmp:
        assert tmp.suffix == ".mp4"
        tmp.write_bytes(b"x")


def test_keep_on_error_puts_what_was_written_in_place(tmp_path):
    target = tmp_path / "rows.txt"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target, keep_on_error=True) as tmp:
            tmp.write_text("frame 1\n")
            raise KeyboardInterrupt
    assert target.read_text() == "frame 1\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["rows.txt"]


def test_json_records_are_one_list_one_record_a_line(tmp_path):
    import json

    from yoloxkit.io import atomic_write_json_records

    path = atomic_write_json_records([{"a": 1}, {"b": [2, 3]}], tmp_path / "r.json")
    assert json.loads(path.read_text()) == [{"a": 1}, {"b": [2, 3]}]
    assert path.read_text().splitlines() == ["[", '{"a": 1},', '{"b": [2, 3]}', "]"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_read_json_mapping_gives_the_object_or_nothing(tmp_path):
    (tmp_path / "ok.json").write_text('{"epochs": 5}', encoding="utf-8")
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert read_json_mapping(tmp_path / "ok.json") == {"epochs": 5}
    assert read_json_mapping(tmp_path / "list.json") == {}
    assert read_json_mapping(tmp_path / "bad.json") == {}
    assert read_json_mapping(tmp_path / "missing.json") == {}
