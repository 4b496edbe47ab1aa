"""Bad data: readers name the file and element (DatasetError, never a KeyError), ``check-data``
lists every problem, and training neither crashes mid-epoch nor silently trains on garbage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_synth import make_coco, make_voc, make_yolo, voc_xml
from yoloxkit.cli import main
from yoloxkit.data import load_dataset
from yoloxkit.data.augment import AugmentConfig
from yoloxkit.data.dataset import TrainingDataset
from yoloxkit.engine.config import training_recipe
from yoloxkit.errors import DatasetError

NAMES = ["bird", "cat", "dog"]


@pytest.fixture()
def voc(tmp_path):
    return make_voc(tmp_path / "voc", {"train": {"a": [("dog", 11, 21, 40, 50, 0)], "b": [("cat", 2, 2, 30, 30, 0)]}},
                    labels=NAMES)


def _rewrite(voc, image_id, xml):
    (voc / "Annotations" / f"{image_id}.xml").write_text(xml)


def test_voc_unknown_class(voc):
    _rewrite(voc, "b", voc_xml("b.jpg", 96, 64, [("horse", 2, 2, 30, 30, 0)]))
    with pytest.raises(DatasetError, match=r"Annotations/b\.xml: object\[0\]/name: class 'horse' is not one of"):
        load_dataset(voc, "train")


def test_voc_missing_size(voc):
    _rewrite(voc, "a", voc_xml("a.jpg", None, None, [("dog", 11, 21, 40, 50, 0)]))
    with pytest.raises(DatasetError, match=r"Annotations/a\.xml: size: missing or invalid image size"):
        load_dataset(voc, "train")


def test_voc_inverted_box(voc):
    _rewrite(voc, "a", voc_xml("a.jpg", 96, 64, [("dog", 50, 21, 40, 50, 0)]))
    with pytest.raises(DatasetError, match=r"Annotations/a\.xml: object\[0\]/bndbox: xmin > xmax"):
        load_dataset(voc, "train")


def test_voc_listed_image_missing(voc):
    (voc / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(DatasetError, match=r"Annotations/b\.xml: filename: image b listed in .*train\.txt is missing"):
        load_dataset(voc, "train")


def test_voc_malformed_xml_and_bndbox(voc):
    _rewrite(voc, "a", "<annotation><size>")
    _rewrite(voc, "b", voc_xml("b.jpg", 96, 64, [("cat", "x", 2, 30, 30, 0)]))
    data = load_dataset(voc, "train", strict=False)
    assert {(i.kind, i.file.split("/")[-1]) for i in data.issues} == {("malformed", "a.xml"), ("malformed", "b.xml")}


def test_check_data_lists_every_problem_and_fails(voc, capsys):
    _rewrite(voc, "a", voc_xml("a.jpg", None, None, [("horse", 11, 21, 40, 50, 0), ("dog", 50, 21, 40, 50, 0)]))
    (voc / "JPEGImages" / "b.jpg").unlink()
    assert main(["check-data", "--data", str(voc), "--no-progress"]) == 1
    out = capsys.readouterr().out
    for expected in ("a.xml: size: missing or invalid", "a.xml: object[0]/name: class 'horse'",
                     "a.xml: object[1]/bndbox: xmin > xmax", "b.xml: filename: image b listed"):
        assert expected in out
    assert "4 errors" in out


def test_check_data_counts_classes_unlabelled_and_corrupt(tmp_path, capsys):
    root = make_yolo(tmp_path / "y", {"train": {"a": [(1, 10, 20, 50, 60), (1, 0, 0, 5, 5)], "b": [], "c": [(2, 1, 1, 9, 9)]}},
                     NAMES)
    (root / "labels" / "train" / "c.txt").write_text("7 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.0 0.2\n")
    (root / "images" / "train" / "b.png").write_bytes((root / "images" / "train" / "a.png").read_bytes()[:200])
    assert main(["check-data", "--data", str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "split train: 3 images, 3 boxes, 1 images without labels" in out
    assert "c.txt: line 1: class id 7 is outside the 3 class names" in out
    assert "c.txt: line 2: box" in out and "zero size" in out
    assert "b.png" in out and "corrupt" in out
    cat_row = next(line for line in out.splitlines() if line.strip().startswith("cat "))
    assert cat_row.split()[1:] == ["1", "2"]  # 1 image, 2 boxes


def test_check_data_clean_dataset_exits_zero(coco_mini, capsys):
    assert main(["check-data", "--data", str(coco_mini), "--split", "val", "--quick", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "split val2017: 79 images" in out and "0 errors" in out


def test_cli_bad_split_is_one_line_error(coco_mini, capsys):
    assert main(["check-data", "--data", str(coco_mini), "--split", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "available splits: train2017, val2017" in err and "\n" not in err


def test_coco_empty_and_invalid_annotation_files(tmp_path):
    root = make_coco(tmp_path / "c", "train", {"a.jpg": [(0, 5, 5, 30, 30)]}, NAMES)
    ann = root / "annotations" / "instances_train.json"
    ann.write_text("")
    with pytest.raises(DatasetError, match=r"instances_train\.json: annotation file is empty"):
        load_dataset(root, "train")
    ann.write_text("{not json")
    with pytest.raises(DatasetError, match=r"instances_train\.json: not valid json"):
        load_dataset(root, "train")
    ann.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(DatasetError, match="missing or invalid 'categories'"):
        load_dataset(root, "train")


def test_coco_unknown_category_and_missing_image(tmp_path):
    root = make_coco(tmp_path / "c", "train", {"a.jpg": [(0, 5, 5, 30, 30)], "b.jpg": []}, NAMES)
    ann = root / "annotations" / "instances_train.json"
    content = json.loads(ann.read_text())
    content["annotations"][0]["category_id"] = 99
    ann.write_text(json.dumps(content))
    with pytest.raises(DatasetError, match=r"annotations id=1: category_id 99 is not in 'categories'"):
        load_dataset(root, "train")
    (root / "train" / "b.jpg").unlink()
    data = load_dataset(root, "train", strict=False)
    assert [i.kind for i in data.issues] == ["unknown_class", "missing_image"]
    assert [r.path.name for r in data.records] == ["a.jpg"]


# --- training on bad data ----------------------------------------------------------------------


def test_training_clips_and_drops_boxes_with_counted_warning(tmp_path):
    root = make_coco(tmp_path / "c", "train", {
        "a.jpg": [(0, -20, 10, 50, 40), (1, 30, 30, 30, 60), (2, 100, 50, 150, 120)],
    }, NAMES, size=(120, 90))
    data = load_dataset(root, "train")  # outside / zero-size boxes are warnings, not errors
    assert {i.kind for i in data.issues} == {"outside_box", "degenerate_box"}
    dataset = TrainingDataset(data, 128, AugmentConfig.off())
    assert any("clipped 2 boxes" in w for w in dataset.warnings)
    assert any("dropped 1 box of zero size" in w for w in dataset.warnings)
    _, targets = dataset[0]
    rows = targets[targets[:, 3] > 0]
    assert len(dataset.warnings) == 2
    ratio = 128 / 120
    np.testing.assert_allclose(rows[:, 1:], [[25 * ratio, 25 * ratio, 50 * ratio, 30 * ratio],
                                             [110 * ratio, 70 * ratio, 20 * ratio, 40 * ratio]], rtol=1e-5)


def test_box_repairs_are_reported_once_by_the_caller_not_logged_by_the_dataset(tmp_path, caplog, capsys):
    """Issue 11 item 10: the "clipped boxes" line was printed twice in training, once logged by
    TrainingDataset and once by the engine from ``dataset.warnings``. The dataset only records it."""
    root = make_coco(tmp_path / "c", "train", {"a.jpg": [(0, -20, 10, 50, 40)]}, NAMES, size=(120, 90))
    with caplog.at_level("DEBUG", logger="yoloxkit"):
        dataset = TrainingDataset(load_dataset(root, "train"), 128, AugmentConfig.off())
    assert dataset.warnings == ["train: clipped 1 box reaching outside their image"]
    assert not [r for r in caplog.records if "clipped" in r.getMessage()]
    assert "clipped" not in capsys.readouterr().err
    assert main(["show-batch", "--data", str(root), "--model", "yolox-nano", "--size", "128", "--count", "1",
                 "--no-aug", "--out", str(tmp_path / "b.png")]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("clipped") == 1


def test_training_replaces_corrupt_image_with_warning(tmp_path, caplog):
    root = make_coco(tmp_path / "c", "train", {"a.jpg": [(0, 5, 5, 30, 30)], "b.jpg": [(1, 10, 10, 40, 40)],
                                                 "c.jpg": [(2, 20, 20, 60, 60)]}, NAMES)
    good = (root / "train" / "b.jpg").read_bytes()
    (root / "train" / "b.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    dataset = TrainingDataset(load_dataset(root, "train"), 128, training_recipe("yolox-s").augment())
    with caplog.at_level("WARNING", logger="yoloxkit.data"):
        samples = [dataset[i] for i in range(len(dataset))]  # no exception mid-epoch
    assert all(image.shape == (128, 128, 3) for image, _ in samples)
    assert any("b.jpg" in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)
    plain = TrainingDataset(load_dataset(root, "train"), 128, AugmentConfig.off())
    _, targets = plain[1]  # b.jpg is replaced by the next readable image, c.jpg (class 2)
    assert targets[0, 0] == 2 and targets[1].sum() == 0


def test_training_class_outside_names_stops_before_first_iteration(tmp_path):
    root = make_coco(tmp_path / "c", "train", {"a.jpg": [(0, 5, 5, 30, 30)]}, NAMES)
    data = load_dataset(root, "train")
    data.records[0].class_ids[:] = 5
    with pytest.raises(DatasetError, match=r"a\.jpg: class id 5 is outside the 3 class names"):
        TrainingDataset(data, 128)


def test_training_empty_split_stops_before_first_iteration(tmp_path):
    root = make_coco(tmp_path / "c", "train", {"a.jpg": [(0, 5, 5, 30, 30)]}, NAMES)
    ann = root / "annotations" / "instances_train.json"
    content = json.loads(ann.read_text())
    content["images"], content["annotations"] = [], []
    ann.write_text(json.dumps(content))
    with pytest.raises(DatasetError, match="has no images to train on"):
        TrainingDataset(load_dataset(root, "train"), 128)


def test_yolo_bad_lines(tmp_path):
    root = make_yolo(tmp_path / "y", {"train": {"a": [(1, 10, 20, 50, 60)]}}, NAMES)
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5\ncat 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.1 0.1\n")
    data = load_dataset(root, "train", strict=False)
    assert [(i.kind, i.element) for i in data.issues] == [("malformed", "line 1"), ("malformed", "line 2"),
                                                          ("unknown_class", "line 3")]
    with pytest.raises(DatasetError, match=r"a\.txt: line 1: expected 5 values .* \(and 2 more errors"):
        load_dataset(root, "train")
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5\ncat 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match=r"line 1: expected 5 values .* \(and 1 more error; `yoloxkit check-data`"):
        load_dataset(root, "train")
