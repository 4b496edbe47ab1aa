"""Issue 11 item 1 (evaluation side): an unreadable image in the evaluated split is skipped with
a one-line warning naming it, counted, reported, and left out of the metrics with its ground
truth, as training skips it, instead of stopping the run."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from data_synth import make_voc
from yoloxkit.cli import main
from yoloxkit.data import load_dataset
from yoloxkit.evaluate import evaluate
from yoloxkit.imaging import read_image

COUNT = 8  # coco-mini val2017 images in the small copy


def _coco_copy(coco_mini: Path, root: Path, with_bad: bool) -> Path:
    """The first COUNT val2017 images of coco-mini; ``with_bad`` adds a truncated JPEG and a text
    file named like a JPEG, each with ground truth (copied from two real images)."""
    content = json.loads((coco_mini / "annotations" / "instances_val2017.json").read_text())
    images = sorted(content["images"], key=lambda i: i["file_name"])[: COUNT + 2]
    kept, spare = images[:COUNT], images[COUNT:]
    (root / "val2017").mkdir(parents=True)
    for image in kept:
        shutil.copy(coco_mini / "val2017" / image["file_name"], root / "val2017" / image["file_name"])
    ids = {image["id"] for image in kept}
    annotations = [a for a in content["annotations"] if a["image_id"] in ids]
    if with_bad:
        jpeg = (coco_mini / "val2017" / spare[0]["file_name"]).read_bytes()
        (root / "val2017" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
        (root / "val2017" / "notes.jpg").write_text("these are my notes, not a picture\n")
        for image, name in zip(spare, ("truncated.jpg", "notes.jpg")):
            kept.append(dict(image, file_name=name))
            boxes = [a for a in content["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]]
            assert boxes, "the bad images must carry ground truth for the test to mean something"
            annotations += boxes
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": kept, "annotations": annotations, "categories": content["categories"]}))
    return root


@pytest.fixture(scope="module")
def datasets(coco_mini, tmp_path_factory):
    base = tmp_path_factory.mktemp("bad_eval")
    return _coco_copy(coco_mini, base / "clean", False), _coco_copy(coco_mini, base / "bad", True)


@pytest.fixture(scope="module")
def detector():
    from yoloxkit import Detector

    return Detector("yolox-nano", size=320, conf=0.01, nms=0.65)


def test_evaluate_skips_unreadable_images_like_training(datasets, detector):
    clean_root, bad_root = datasets
    bad = load_dataset(bad_root, "val2017")
    assert len(bad.records) == COUNT + 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(detector, bad, batch_size=4, progress=False)
    assert sorted(Path(p).name for p in result.skipped_images) == ["notes.jpg", "truncated.jpg"]
    messages = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(messages) == 2 and all("\n" not in m for m in messages)
    assert any("truncated.jpg" in m for m in messages) and any("notes.jpg" in m for m in messages)
    assert result.num_images == COUNT
    # the same numbers as on the split without the two files: their ground truth is left out too
    reference = evaluate(detector, load_dataset(clean_root, "val2017"), batch_size=4, progress=False)
    assert reference.skipped_images == []
    assert result.metrics == pytest.approx(reference.metrics, abs=1e-3)
    assert result.per_class_detail == reference.per_class_detail
    text = result.format()
    assert "skipped 2 images that cannot be read" in text and "truncated.jpg" in text
    assert result.to_json()["skipped_images"] == result.skipped_images


def test_eval_command_reports_skipped_images(datasets, capsys, tmp_path):
    _, bad_root = datasets
    out = tmp_path / "metrics.json"
    code = main(["eval", "--data", str(bad_root), "--model", "yolox-nano", "--size", "320", "--no-progress",
                 "--json-out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    warned = [line for line in captured.err.splitlines() if "skipped" in line]
    assert len(warned) == 2 and all(line.startswith("warning: ") for line in warned), captured.err
    assert f"{COUNT} images" in captured.out and "skipped 2 images that cannot be read" in captured.out
    assert len(json.loads(out.read_text())["skipped_images"]) == 2


def _perfect(paths):
    """A predictor that reads each image (as a Detector does) and returns its ground truth."""
    results = []
    for path in paths:
        read_image(path)
        record = BY_PATH[str(path)]
        keep = np.ones(len(record.boxes), bool) if record.ignore is None else ~record.ignore
        results.append(type("R", (), {"boxes": record.boxes[keep], "scores": np.linspace(0.9, 0.5, keep.sum()),
                                      "class_ids": record.class_ids[keep]})())
    return results


BY_PATH: dict = {}


def test_voc_metric_leaves_out_ground_truth_of_skipped_images(tmp_path):
    images = {"a": [("dog", 11, 21, 40, 50, 0)], "b": [("cat", 5, 5, 60, 50, 0)], "c": [("bird", 3, 3, 30, 30, 0)],
              "bad": [("dog", 1, 1, 50, 50, 0), ("bird", 40, 10, 90, 60, 0)]}
    root = make_voc(tmp_path / "voc", {"val": images})
    (root / "JPEGImages" / "bad.jpg").write_bytes((root / "JPEGImages" / "bad.jpg").read_bytes()[:200])
    data = load_dataset(root, "val")
    BY_PATH.update({str(r.path): r for r in data.records})
    with pytest.warns(UserWarning, match=r"bad\.jpg.*skipped"):
        result = evaluate(_perfect, data, batch_size=8, progress=False)
    assert [Path(p).name for p in result.skipped_images] == ["bad.jpg"]
    assert result.kind == "voc" and result.num_images == 3
    # with the unreadable image's two boxes counted as missed, dog and bird would stay below 100
    assert result.per_class == {"bird": 100.0, "cat": 100.0, "dog": 100.0}
    assert result.per_class_detail["dog"]["gt"] == 1


def test_no_readable_image_is_a_dataset_error(tmp_path):
    root = make_voc(tmp_path / "voc", {"val": {"x": [("dog", 11, 21, 40, 50, 0)]}})
    (root / "JPEGImages" / "x.jpg").write_text("not a picture")
    data = load_dataset(root, "val")
    BY_PATH.update({str(r.path): r for r in data.records})
    from yoloxkit.errors import DatasetError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DatasetError, match="no image of split 'val' can be read"):
            evaluate(_perfect, data, progress=False)
