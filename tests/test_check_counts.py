"""Issue 11 item 14: check-data counts every box, eval leaves crowd (COCO iscrowd) and difficult
(VOC) boxes out; both reports now say so, and check-data's "evaluated" count is eval's gt count."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_synth import make_coco, make_voc
from yoloxkit.cli import main
from yoloxkit.data import load_dataset
from yoloxkit.data.check import check_dataset
from yoloxkit.evaluate import ImagePredictions, evaluate_predictions

NAMES = ["bird", "cat", "dog"]


def _coco_with_crowd(root):
    make_coco(root, "val", {"a.jpg": [(1, 5, 5, 40, 40), (1, 50, 10, 90, 60), (2, 10, 50, 30, 80)],
                            "b.jpg": [(1, 20, 20, 60, 70), (0, 70, 5, 110, 40)]}, NAMES)
    path = root / "annotations" / "instances_val.json"
    content = json.loads(path.read_text())
    content["annotations"][1]["iscrowd"] = 1  # a crowd cat in a.jpg
    path.write_text(json.dumps(content))
    return root


def _voc_with_difficult(root):
    return make_voc(root, {"val": {"a": [("cat", 5, 5, 40, 40, 0), ("cat", 50, 10, 90, 60, 1)],
                                   "b": [("dog", 10, 10, 50, 50, 1), ("dog", 60, 5, 90, 60, 0),
                                         ("bird", 2, 2, 20, 20, 0)]}})


def _cat_row(text: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.strip().startswith("cat "))


@pytest.mark.parametrize("kind", ["coco", "voc"])
def test_check_data_shows_all_and_evaluated_boxes(tmp_path, capsys, kind):
    root = _coco_with_crowd(tmp_path / "c") if kind == "coco" else _voc_with_difficult(tmp_path / "v")
    report = check_dataset(root, progress=False)
    split = report.splits[0]
    expected_ignored = 1 if kind == "coco" else 2
    assert split.ignored == expected_ignored and sum(split.ignored_per_class) == expected_ignored
    assert main(["check-data", "--data", str(root), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert (f"5 boxes ({5 - expected_ignored} evaluated; {expected_ignored} crowd/difficult, ignored by eval"
            in text), text
    assert "evaluated" in text.splitlines()[3] and "crowd/difficult" in text.splitlines()[3]  # table header
    # cat: images, boxes, evaluated, crowd/difficult
    assert _cat_row(text) == ["cat", "2" if kind == "coco" else "1", "3" if kind == "coco" else "2",
                              "2" if kind == "coco" else "1", "1"]

    # eval counts what check-data calls "evaluated" and says what its gt column counts
    data = load_dataset(root, "val")
    predictions = [ImagePredictions(r.boxes, np.full(len(r.boxes), 0.9, np.float32), r.class_ids)
                   for r in data.records]
    result = evaluate_predictions(data, predictions)
    by_name = dict(zip(report.names, zip(split.boxes_per_class, split.ignored_per_class)))
    for name, detail in result.per_class_detail.items():
        boxes, ignored = by_name[name]
        assert (detail["gt"], detail["ignored"]) == (boxes - ignored, ignored), name
    table = result.format()
    header = next(line for line in table.splitlines() if line.startswith("class"))
    assert header.split()[:3] == ["class", "gt", "ignored"]
    noun = "box" if expected_ignored == 1 else "boxes"
    assert f"gt: ground-truth boxes scored; ignored: {expected_ignored} crowd/difficult {noun}" in table


def test_without_flagged_boxes_the_tables_stay_as_they_were(tmp_path, capsys):
    root = make_coco(tmp_path / "c", "val", {"a.jpg": [(1, 5, 5, 40, 40)]}, NAMES)
    assert main(["check-data", "--data", str(root), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "split val: 1 images" in text and "crowd/difficult" not in text and "evaluated" not in text
    data = load_dataset(root, "val")
    result = evaluate_predictions(data, [ImagePredictions(data.records[0].boxes, np.ones(1, np.float32),
                                                          data.records[0].class_ids)])
    assert "gt: ground-truth boxes scored (no crowd/difficult boxes to ignore)" in result.format()
