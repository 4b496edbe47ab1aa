"""Pascal VOC AP: the two AP definitions, VOC-devkit matching, mAP over classes and IoUs."""

from pathlib import Path

import numpy as np
import pytest

from yoloxkit.data.records import DetectionData, ImageRecord
from yoloxkit.evaluate import ImagePredictions, evaluate_predictions
from yoloxkit.evaluate.voc import ap_area, ap_voc07, match_image, precision_recall, voc_evaluate


def record(boxes, classes, ignore=None, name="a.jpg"):
    return ImageRecord(Path(name), 100, 100, np.asarray(boxes, np.float32).reshape(-1, 4),
                       np.asarray(classes, np.int64), ignore=None if ignore is None else np.asarray(ignore, bool))


def preds(boxes, scores, classes):
    return ImagePredictions(np.asarray(boxes, np.float32).reshape(-1, 4), scores, classes)


def test_ap_area_by_hand():
    # ranked: TP, FP, TP with 2 ground-truth boxes -> recall .5 .5 1, precision 1 .5 .667
    recall = np.array([0.5, 0.5, 1.0])
    precision = np.array([1.0, 0.5, 2 / 3])
    assert ap_area(recall, precision) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def test_ap_voc07_by_hand():
    recall = np.array([0.5, 0.5, 1.0])
    precision = np.array([1.0, 0.5, 2 / 3])
    # levels 0..0.5 (6 levels) reach precision 1; levels 0.6..1.0 (5 levels) reach 2/3
    assert ap_voc07(recall, precision) == pytest.approx((6 * 1.0 + 5 * 2 / 3) / 11)


def test_ap_definitions_differ_when_recall_is_partial():
    recall = np.array([0.25])
    precision = np.array([1.0])
    assert ap_area(recall, precision) == pytest.approx(0.25)
    assert ap_voc07(recall, precision) == pytest.approx(3 / 11)  # levels 0, .1, .2


def test_match_image_duplicate_is_false_positive():
    gt = np.array([[0, 0, 10, 10]], np.float64)
    dets = np.array([[0, 0, 10, 10], [0, 0, 10, 11]], np.float64)
    labels = match_image(dets, gt, np.zeros(1, bool), thresholds=(0.5,))
    assert labels.tolist() == [[1, 0]]


def test_match_image_best_overlap_difficult_is_ignored():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float64)
    dets = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], np.float64)
    labels = match_image(dets, gt, np.array([True, False]), thresholds=(0.5,))
    assert labels.tolist() == [[-1, 1, 0]]


def test_match_image_threshold_dependence():
    gt = np.array([[0, 0, 10, 10]], np.float64)
    dets = np.array([[0, 0, 10, 8]], np.float64)  # IoU 0.8
    labels = match_image(dets, gt, np.zeros(1, bool), thresholds=(0.5, 0.75, 0.8, 0.85))
    assert labels[:, 0].tolist() == [1, 1, 1, 0]


def test_precision_recall_drops_ignored():
    recall, precision = precision_recall(np.array([0.9, 0.8, 0.7]), np.array([1, -1, 0]), num_gt=2)
    assert recall.tolist() == [0.5, 0.5]
    assert precision.tolist() == [1.0, 0.5]


@pytest.fixture
def two_class_data():
    records = [
        record([[10, 10, 50, 50], [60, 60, 90, 90]], [0, 1], name="a.jpg"),
        record([[5, 5, 40, 40], [50, 50, 70, 70]], [0, 0], ignore=[False, True], name="b.jpg"),
    ]
    return DetectionData(["cat", "dog", "bird"], records, "voc", "val", Path("."))


def test_perfect_predictions_score_100(two_class_data):
    predictions = [
        preds(r.boxes, np.linspace(0.9, 0.5, len(r.boxes)), r.class_ids) for r in two_class_data.records
    ]
    result = evaluate_predictions(two_class_data, predictions)
    assert result.kind == "voc"
    assert result.metrics == {"mAP50": 100.0, "mAP50_voc07": 100.0, "mAP50_95": 100.0}
    assert result.per_class == {"cat": 100.0, "dog": 100.0, "bird": None}  # bird has no ground truth
    assert result.per_class_detail["cat"]["gt"] == 2  # the difficult box is not counted
    assert result.primary == 100.0


def test_no_predictions_score_zero(two_class_data):
    result = evaluate_predictions(two_class_data, [ImagePredictions.empty() for _ in two_class_data.records])
    assert result.metrics == {"mAP50": 0.0, "mAP50_voc07": 0.0, "mAP50_95": 0.0}
    assert result.per_class["bird"] is None


def test_mixed_predictions_by_hand(two_class_data):
    # cat: TP (0.9, img a), FP (0.8, img b nowhere), TP (0.7, img b) -> recall .5 .5 1, prec 1 .5 .667
    # dog: one FP only -> AP 0
    predictions = [
        preds([[10, 10, 50, 50], [0, 0, 5, 5]], np.array([0.9, 0.6]), [0, 1]),
        preds([[80, 80, 99, 99], [5, 5, 40, 40], [50, 50, 70, 70]], np.array([0.8, 0.7, 0.95]), [0, 0, 0]),
    ]
    metrics = voc_evaluate(two_class_data.records, predictions, 3)
    assert metrics.ap50[0] == pytest.approx(0.5 + 0.5 * 2 / 3)  # the 0.95 on the difficult box is ignored
    assert metrics.ap50_voc07[0] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert metrics.ap50[1] == 0.0
    assert np.isnan(metrics.ap50[2])
    summary = metrics.summary()
    assert summary["mAP50"] == pytest.approx((0.5 + 0.5 * 2 / 3) / 2 * 100)


def test_localisation_error_lowers_map50_95_only(two_class_data):
    shifted = []
    for r in two_class_data.records:
        boxes = r.boxes.copy()
        boxes[:, 2] += (boxes[:, 2] - boxes[:, 0]) * 0.25  # IoU 0.8 with the truth
        shifted.append(preds(boxes, np.full(len(boxes), 0.9), r.class_ids))
    metrics = voc_evaluate(two_class_data.records, shifted, 3).summary()
    assert metrics["mAP50"] == 100.0
    assert metrics["mAP50_95"] == pytest.approx(100.0 * 7 / 10)  # thresholds 0.50..0.80 of 0.50..0.95


def test_restricted_classes_are_left_out(two_class_data):
    predictions = [preds(r.boxes, np.full(len(r.boxes), 0.9), r.class_ids) for r in two_class_data.records]
    result = evaluate_predictions(two_class_data, predictions, classes=[0], unknown_classes=["dog", "bird"])
    assert result.per_class["dog"] is None
    assert result.metrics["mAP50"] == 100.0
    assert "not evaluated" in result.format()
