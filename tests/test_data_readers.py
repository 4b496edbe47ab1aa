"""Dataset readers (COCO, VOC, YOLO-txt), layout detection and split resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_synth import make_coco, make_voc, make_yolo
from yoloxkit.data import detect_layout, list_splits, load_dataset
from yoloxkit.errors import DatasetError


def test_coco_mini_classes_come_from_full_category_list(coco_mini):
    train = load_dataset(coco_mini, default_prefix="train")
    val = load_dataset(coco_mini)
    assert (train.split, val.split) == ("train2017", "val2017")
    content = json.loads((coco_mini / "annotations" / "instances_val2017.json").read_text())
    categories = sorted(content["categories"], key=lambda c: c["id"])
    assert val.names == [c["name"] for c in categories] == train.names
    assert val.category_ids == [c["id"] for c in categories]
    used = {a["category_id"] for a in content["annotations"]}
    assert len(used) == 78  # val2017 here lacks two categories; ids must not shift
    assert val.annotation_file == coco_mini / "annotations" / "instances_val2017.json"
    # every annotation maps to the class of its category id, boxes xyxy from xywh
    by_file = {r.path.name: r for r in val.records}
    images = {i["id"]: i["file_name"] for i in content["images"]}
    first = content["annotations"][0]
    record = by_file[images[first["image_id"]]]
    x, y, w, h = first["bbox"]
    row = next(k for k in range(len(record.boxes))
               if np.allclose(record.boxes[k], [x, y, x + w, y + h], atol=1e-3))
    assert val.names[record.class_ids[row]] == next(c["name"] for c in categories if c["id"] == first["category_id"])
    assert len(val.records) == len(content["images"])
    assert sum(len(r.boxes) for r in val.records) == len(content["annotations"])


def test_coco_iscrowd_is_ignored_flag(coco_mini):
    val = load_dataset(coco_mini, "val2017")
    content = json.loads((coco_mini / "annotations" / "instances_val2017.json").read_text())
    crowd = sum(a["iscrowd"] for a in content["annotations"])
    assert crowd > 0
    assert sum(int(r.ignore.sum()) for r in val.records) == crowd


def test_coco_names_argument_reorders_classes(tmp_path):
    root = make_coco(tmp_path / "c", "train", {"a.jpg": [(0, 5, 5, 30, 30), (2, 40, 10, 90, 60)]},
                     ["cat", "dog", "bird"], category_ids=[3, 7, 9])
    data = load_dataset(root, names=["bird", "cat", "dog"], default_prefix="train")
    assert data.names == ["bird", "cat", "dog"]
    assert data.category_ids == [9, 3, 7]
    assert data.records[0].class_ids.tolist() == [1, 0]
    with pytest.raises(DatasetError, match="'dog' is not in the given class names"):
        load_dataset(root, names=["bird", "cat"], default_prefix="train")


@pytest.mark.parametrize(
    "split, default, expected",
    [("val2017", "val", "val2017"), ("val", "val", "val2017"), ("tr", "val", "train2017"), (None, "train", "train2017")],
)
def test_split_resolution(coco_mini, split, default, expected):
    assert load_dataset(coco_mini, split=split, default_prefix=default).split == expected


def test_split_resolution_errors_list_available_splits(tmp_path):
    root = tmp_path / "c"
    for split in ("train_a", "train_b", "val"):
        make_coco(root, split, {"a.jpg": [(0, 5, 5, 30, 30)]}, ["cat", "dog", "bird"])
    with pytest.raises(DatasetError, match=r"more than one split starts with 'train'.*train_a, train_b, val"):
        load_dataset(root, default_prefix="train")
    with pytest.raises(DatasetError, match=r"ambiguous, it matches train_a, train_b"):
        load_dataset(root, split="train")
    with pytest.raises(DatasetError, match=r"no split 'test' \(available splits: train_a, train_b, val\)"):
        load_dataset(root, split="test")
    assert load_dataset(root).split == "val"
    assert load_dataset(root, split="train_b").split == "train_b"


def test_layout_detection(tmp_path, coco_mini):
    assert detect_layout(coco_mini).format == "coco"
    voc = make_voc(tmp_path / "voc", {"train": {"x": [("cat", 1, 1, 10, 10, 0)]}})
    assert detect_layout(voc).format == "voc"
    yolo = make_yolo(tmp_path / "yolo", {"train": {"x": [(0, 1, 1, 10, 10)]}}, ["bird", "cat", "dog"])
    assert detect_layout(yolo).format == "yolo"
    assert detect_layout(yolo / "data.yaml").yaml_file == yolo / "data.yaml"
    assert detect_layout(tmp_path).root == voc  # a VOCdevkit-style parent with one VOC dataset
    make_voc(tmp_path / "voc2", {"train": {"x": [("cat", 1, 1, 10, 10, 0)]}})
    with pytest.raises(DatasetError, match="several VOC datasets"):
        detect_layout(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="unknown dataset layout"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        detect_layout(tmp_path / "missing")


def test_voc_reader_names_coordinates_difficult(tmp_path):
    root = make_voc(tmp_path / "voc", {
        "trainval": {"a": [("dog", 11, 21, 40, 50, 0), ("cat", 1, 1, 96, 64, 1)]},
        "test": {"b": [("bird", 5, 5, 9, 9, 0)]},
    })
    assert list_splits(root) == ["test", "trainval"]
    data = load_dataset(root, "trainval")
    # names: every object/name of all splits, sorted (no labels.txt here)
    assert data.names == ["bird", "cat", "dog"]
    record = data.records[0]
    assert (record.width, record.height) == (96, 64)
    # VOC's 1-based coordinates minus one
    np.testing.assert_array_equal(record.boxes, [[10, 20, 39, 49], [0, 0, 95, 63]])
    assert record.class_ids.tolist() == [2, 1]
    assert record.ignore.tolist() == [False, True]
    assert record.image_id == "a"


def test_voc_names_from_labels_file_and_argument(tmp_path):
    root = make_voc(tmp_path / "voc", {"train": {"a": [("dog", 11, 21, 40, 50, 0)]}}, labels=["dog", "cat", "bird"])
    assert load_dataset(root, "train").names == ["dog", "cat", "bird"]
    data = load_dataset(root, "train", names=["cat", "dog"])
    assert data.names == ["cat", "dog"] and data.records[0].class_ids.tolist() == [1]
    names_file = tmp_path / "names.txt"
    names_file.write_text("x\ndog\n")
    assert load_dataset(root, "train", names=names_file).records[0].class_ids.tolist() == [1]


def test_voc_per_class_lists_are_not_splits(tmp_path):
    root = make_voc(tmp_path / "voc", {"train": {"a": [("dog", 11, 21, 40, 50, 0)]}})
    (root / "ImageSets" / "Main" / "dog_train.txt").write_text("a  1\n")
    assert list_splits(root) == ["train"]


def test_yolo_reader_yaml_and_aliases(tmp_path):
    root = make_yolo(tmp_path / "y", {
        "train2017": {"a": [(1, 10, 20, 50, 60), (0, 0, 0, 100, 80)]},
        "val2017": {"b": [(2, 30, 30, 40, 45)], "c": []},
    }, ["bird", "cat", "dog"], yaml_names={0: "bird", 1: "cat", 2: "dog"})
    assert list_splits(root / "data.yaml") == ["train2017", "val2017"]
    val = load_dataset(root / "data.yaml")  # default: the YAML's val entry
    assert val.split == "val2017" and val.names == ["bird", "cat", "dog"]
    assert load_dataset(root / "data.yaml", split="train").split == "train2017"
    train = load_dataset(root, split="train2017")  # directory with its data.yaml
    np.testing.assert_allclose(train.records[0].boxes, [[10, 20, 50, 60], [0, 0, 100, 80]], atol=1e-4)
    assert train.records[0].class_ids.tolist() == [1, 0]
    assert (train.records[0].width, train.records[0].height) == (100, 80)
    assert [len(r.boxes) for r in val.records] == [1, 0]


def test_yolo_directory_names_from_classes_txt_or_argument(tmp_path):
    root = make_yolo(tmp_path / "y", {"train": {"a": [(1, 10, 20, 50, 60)]}}, ["bird", "cat", "dog"], write_yaml=False)
    with pytest.raises(DatasetError, match="no class names"):
        load_dataset(root, default_prefix="train")
    assert load_dataset(root, default_prefix="train", names="bird,cat,dog").names == ["bird", "cat", "dog"]
    (root / "classes.txt").write_text("bird\ncat\ndog\n")
    assert load_dataset(root, default_prefix="train").names == ["bird", "cat", "dog"]
