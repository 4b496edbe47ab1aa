"""convert-dataset: every split, split names kept, class names and boxes exact after a round trip."""

from __future__ import annotations

import numpy as np
import pytest

from data_synth import make_voc
from yoloxkit.cli import main
from yoloxkit.data import list_splits, load_dataset
from yoloxkit.data.convert import convert_dataset
from yoloxkit.errors import DatasetError


def _assert_same(original, copy, keep_ignored=True):
    assert copy.names == original.names and copy.split == original.split
    by_name = {r.path.name: r for r in copy.records}
    assert sorted(by_name) == sorted(r.path.name for r in original.records)
    for record in original.records:
        other = by_name[record.path.name]
        assert (other.width, other.height) == (record.width, record.height)
        keep = np.ones(len(record.boxes), bool) if keep_ignored else ~record.ignore
        np.testing.assert_array_equal(other.boxes, record.boxes[keep])  # bit-exact float32
        np.testing.assert_array_equal(other.class_ids, record.class_ids[keep])
        if keep_ignored:
            np.testing.assert_array_equal(other.ignore, record.ignore)
        assert other.path.read_bytes() == record.path.read_bytes()


@pytest.fixture(scope="module")
def coco_splits(coco_mini):
    return {split: load_dataset(coco_mini, split) for split in ("train2017", "val2017")}


@pytest.mark.parametrize("middle", ["voc", "yolo"])
def test_coco_round_trip_on_coco_mini(tmp_path, coco_mini, coco_splits, middle):
    convert_dataset(coco_mini, tmp_path / middle, middle, progress=False)
    convert_dataset(tmp_path / middle, tmp_path / "back", "coco", progress=False)
    assert list_splits(tmp_path / middle) == list_splits(tmp_path / "back") == ["train2017", "val2017"]
    for split, original in coco_splits.items():
        # YOLO-txt has no crowd/difficult flag: ignored boxes are left out there
        _assert_same(original, load_dataset(tmp_path / middle, split), keep_ignored=middle == "voc")
        _assert_same(original, load_dataset(tmp_path / "back", split), keep_ignored=middle == "voc")
    if middle == "voc":
        assert (tmp_path / "voc" / "ImageSets" / "Main" / "val2017.txt").is_file()
        xml = (tmp_path / "voc" / "Annotations" / "000000397133.xml").read_text()
        assert "<xmin>218.62</xmin>" in xml  # COCO x 217.62 in VOC's 1-based pixels
    else:
        assert (tmp_path / "yolo" / "images" / "val2017").is_dir()
        assert "val: images/val2017" in (tmp_path / "yolo" / "data.yaml").read_text()


def test_voc_to_yolo_to_voc_keeps_integer_pixels(tmp_path):
    src = make_voc(tmp_path / "voc", {"trainval": {"a": [("dog", 11, 21, 40, 50, 0), ("cat", 1, 1, 96, 64, 0)]},
                                      "test": {"b": [("bird", 5, 5, 9, 9, 0)]}})
    convert_dataset(src, tmp_path / "yolo", "yolo", progress=False)
    convert_dataset(tmp_path / "yolo", tmp_path / "voc2", "voc", progress=False)
    for split in ("trainval", "test"):
        _assert_same(load_dataset(src, split), load_dataset(tmp_path / "voc2", split))
    assert "<xmin>11</xmin>" in (tmp_path / "voc2" / "Annotations" / "a.xml").read_text()
    assert (tmp_path / "voc2" / "labels.txt").read_text().split() == ["bird", "cat", "dog"]


def test_convert_refuses_non_empty_destination_and_unknown_format(tmp_path, coco_mini, capsys):
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "x").write_text("")
    with pytest.raises(DatasetError, match="destination exists and is not empty"):
        convert_dataset(coco_mini, tmp_path / "dst", "voc")
    with pytest.raises(DatasetError, match="unknown format 'pascal'"):
        convert_dataset(coco_mini, tmp_path / "new", "pascal")
    assert main(["convert-dataset", str(coco_mini), str(tmp_path / "dst"), "--to", "yolo"]) == 2
    assert "destination exists" in capsys.readouterr().err


def test_convert_cli_writes_every_split(tmp_path, coco_mini, capsys):
    assert main(["convert-dataset", str(coco_mini), str(tmp_path / "v"), "--to", "voc"]) == 0
    assert "train2017 80 images, val2017 79 images" in capsys.readouterr().out
    assert list_splits(tmp_path / "v") == ["train2017", "val2017"]
    assert not any(p.name.startswith(".v.partial") for p in tmp_path.iterdir())
