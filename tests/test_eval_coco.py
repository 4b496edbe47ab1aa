"""COCO evaluation: faster-coco-eval identical to pycocotools, summary layout, edge cases."""

import contextlib
import io
import json

import numpy as np
import pytest

from yoloxkit.data import load_dataset
from yoloxkit.data.records import DetectionData, ImageRecord
from yoloxkit.evaluate import ImagePredictions, evaluate_predictions
from yoloxkit.evaluate.coco import (
    coco_category_ids,
    coco_detections,
    coco_evaluate,
    coco_ground_truth,
    coco_image_ids,
    summary_lines,
)


@pytest.fixture(scope="module")
def val(coco_mini):
    return load_dataset(coco_mini, split="val2017")


def noisy_predictions(data, seed=0):
    """Ground truth jittered, some boxes dropped, wrong-class and random boxes added, random scores."""
    rng = np.random.default_rng(seed)
    out = []
    for r in data.records:
        keep = rng.random(len(r.boxes)) < 0.8
        boxes = r.boxes[keep].astype(np.float64)
        wh = boxes[:, 2:] - boxes[:, :2]
        boxes = boxes + rng.normal(0, 0.08, boxes.shape) * np.concatenate([wh, wh], axis=1)
        classes = r.class_ids[keep].copy()
        flip = rng.random(len(classes)) < 0.1
        classes[flip] = rng.integers(0, len(data.names), flip.sum())
        n_random = int(rng.integers(0, 6))
        xy = rng.random((n_random, 2)) * [r.width * 0.8, r.height * 0.8]
        random_boxes = np.concatenate([xy, xy + rng.random((n_random, 2)) * 80 + 4], axis=1)
        boxes = np.concatenate([boxes, random_boxes])
        classes = np.concatenate([classes, rng.integers(0, len(data.names), n_random)])
        out.append(ImagePredictions(boxes, rng.random(len(boxes)), classes))
    return out


def test_faster_coco_eval_identical_to_pycocotools(val):
    gt = coco_ground_truth(val)
    image_ids = coco_image_ids(val, gt)
    category_ids = coco_category_ids(val)
    detections = coco_detections(noisy_predictions(val), image_ids, category_ids)
    fast = coco_evaluate(gt, detections, image_ids, category_ids, engine="faster-coco-eval")
    reference = coco_evaluate(gt, detections, image_ids, category_ids, engine="pycocotools")
    assert 0.2 < reference.stats[0] < 0.9  # a non-trivial operating point
    np.testing.assert_allclose(fast.stats, reference.stats, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.precision, reference.precision, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(fast.per_class_ap), np.isnan(reference.per_class_ap))
    np.testing.assert_allclose(fast.per_class_ap, reference.per_class_ap, rtol=0, atol=1e-12)


def test_summary_lines_match_pycocotools_output(val):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = coco_ground_truth(val)
    image_ids = coco_image_ids(val, gt)
    detections = coco_detections(noisy_predictions(val, seed=1), image_ids, coco_category_ids(val))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        coco_gt = COCO(str(val.annotation_file))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes([dict(d) for d in detections]), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        printed.truncate(0)
        printed.seek(0)
        evaluator.summarize()
    assert summary_lines(evaluator.stats) == printed.getvalue().splitlines()


def test_ground_truth_as_predictions_scores_100(val):
    predictions = [
        ImagePredictions(r.boxes[~r.ignore], np.ones((~r.ignore).sum()), r.class_ids[~r.ignore]) for r in val.records
    ]
    result = evaluate_predictions(val, predictions)
    assert result.kind == "coco"
    assert result.metrics["AP"] == pytest.approx(100.0)
    assert result.metrics["AP50"] == pytest.approx(100.0)
    assert set(result.metrics) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100"}
    # val2017 of coco-mini has annotations for 78 of its 80 categories
    missing = [name for name, ap in result.per_class.items() if ap is None]
    assert len(missing) == 2
    assert all(result.per_class_detail[name]["gt"] == 0 for name in missing)
    doc = result.to_json()
    assert doc["per_class"][missing[0]] is None
    json.dumps(doc)  # plain types only


def test_no_predictions_give_zero_without_crash(val):
    result = evaluate_predictions(val, [ImagePredictions.empty() for _ in val.records])
    assert result.metrics["AP"] == 0.0
    assert result.primary == 0.0
    assert sum(v is None for v in result.per_class.values()) == 2
    assert all(v == 0.0 for v in result.per_class.values() if v is not None)


def test_detections_use_category_ids_and_xywh():
    pred = ImagePredictions(np.array([[10, 20, 40, 60]]), np.array([0.5]), np.array([1]))
    (entry,) = coco_detections([pred], [42], [7, 90])
    assert entry == {"image_id": 42, "category_id": 90, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.5}


def test_non_coco_data_is_scored_the_coco_way(tmp_path):
    records = [
        ImageRecord(tmp_path / "a.jpg", 200, 100, np.array([[10, 10, 60, 60], [100, 20, 190, 90]], np.float32),
                    np.array([0, 1]))
    ]
    data = DetectionData(["car", "person"], records, "yolo", "val", tmp_path)
    gt = coco_ground_truth(data)
    assert [a["area"] for a in gt["annotations"]] == [2500.0, 6300.0]
    perfect = [ImagePredictions(records[0].boxes, np.array([0.9, 0.8]), records[0].class_ids)]
    assert evaluate_predictions(data, perfect).metrics["AP"] == pytest.approx(100.0)
    swapped = [ImagePredictions(records[0].boxes, np.array([0.9, 0.8]), records[0].class_ids[::-1].copy())]
    result = evaluate_predictions(data, swapped)
    assert result.metrics["AP"] == 0.0
    assert result.per_class == {"car": 0.0, "person": 0.0}
    voc = evaluate_predictions(data, perfect, metric="voc")
    assert voc.kind == "voc" and voc.primary == 100.0


def test_format_prints_summary_and_table(val):
    result = evaluate_predictions(val, noisy_predictions(val, seed=2))
    text = result.format()
    lines = text.splitlines()
    assert lines[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ")
    assert len([line for line in lines if "Average" in line]) == 12
    assert "person" in text and "toothbrush" in text
