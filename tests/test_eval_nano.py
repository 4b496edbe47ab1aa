"""End-to-end evaluation of the bundled yolox-nano on coco-mini val2017 (one inference pass with
torch, one through the CLI with onnxruntime), and VOC vs COCO agreement on the same predictions.

Reference: the official pipeline (pre/post-processing of the official repository) scores the
same weights at AP 31.16 / AP50 49.41 (pycocotools, 416, conf 0.01, NMS 0.65). yoloxkit clips
boxes to the image, which moves AP by +0.06 on this split; the tolerance is 0.2.
"""

import dataclasses
import json

import cv2
import numpy as np
import pytest

from yoloxkit.cli import main
from yoloxkit.data import load_dataset
from yoloxkit.evaluate import evaluate_predictions
from yoloxkit.evaluate.runner import class_mapping, collect_predictions
from yoloxkit.evaluate.voc import voc_evaluate

OFFICIAL_AP, OFFICIAL_AP50 = 31.16, 49.41


@pytest.fixture(scope="module")
def val(coco_mini):
    return load_dataset(coco_mini, split="val2017")


@pytest.fixture(scope="module")
def nano_predictions(val):
    from yoloxkit import Detector

    detector = Detector("yolox-nano", size=416, conf=0.01, nms=0.65)
    return collect_predictions(detector, val, class_mapping(detector.names, val), batch_size=8, progress=False)


def test_bundled_nano_matches_official_ap(val, nano_predictions):
    result = evaluate_predictions(val, nano_predictions)
    assert result.metrics["AP"] == pytest.approx(OFFICIAL_AP, abs=0.2)
    assert result.metrics["AP50"] == pytest.approx(OFFICIAL_AP50, abs=0.2)
    reference = evaluate_predictions(val, nano_predictions, engine="pycocotools")
    assert reference.metrics == pytest.approx(result.metrics, abs=1e-9)
    assert reference.per_class.keys() == result.per_class.keys()
    for name, value in result.per_class.items():
        assert reference.per_class[name] == (None if value is None else pytest.approx(value, abs=1e-9)), name


def _ap_101(recall: np.ndarray, precision: np.ndarray) -> float:
    """COCO's interpolation applied to a VOC PR curve: the precision envelope at 101 recalls."""
    if recall.size == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.where(index < len(recall), envelope[np.minimum(index, len(recall) - 1)], 0.0).mean())


def test_voc_and_coco_agree_on_map50(val, nano_predictions):
    """The same predictions, the same boxes (coco-mini val2017 as VOC records, iscrowd -> difficult).

    Definitions differ in three ways: (1) COCO averages the precision envelope at 101 recall
    points, VOC integrates it, so for identical matches the two differ by at most 1/101 of the
    precision range per class (both are Riemann bounds of a non-increasing step function), i.e.
    <= 0.99 AP points; (2) COCO matches detections inside a crowd region by intersection over
    the detection area and ignores them, VOC ignores a detection only when its best-IoU box is
    difficult; (3) a detection whose best box is already taken is a duplicate (false positive) for
    VOC, while COCO gives it the best still-free box above the threshold; (4) COCO keeps at most
    100 detections per image and class. So: classes without crowd boxes mostly agree exactly once
    VOC's curve is sampled the COCO way (the rest differ through (3)/(4)), each such class agrees
    within 1/101 with VOC's own area AP, and the class mean within 1 point.
    """
    coco = evaluate_predictions(val, nano_predictions, metric="coco")
    voc_data = dataclasses.replace(val, format="voc", annotation_file=None, category_ids=[])
    voc = evaluate_predictions(voc_data, nano_predictions)
    assert voc.kind == "voc"
    coco_ap50, voc_ap50 = coco.metrics["AP50"], voc.metrics["mAP50"]
    print(f"\ncoco-mini val2017, bundled nano: COCO AP50 {coco_ap50:.2f}, VOC mAP50 (area) {voc_ap50:.2f}, "
          f"VOC07 {voc.metrics['mAP50_voc07']:.2f}; COCO AP {coco.metrics['AP']:.2f}, VOC mAP50_95 "
          f"{voc.metrics['mAP50_95']:.2f}")
    assert abs(coco_ap50 - voc_ap50) <= 1.0

    curves = voc_evaluate(val.records, nano_predictions, len(val.names), thresholds=(0.5,))
    crowd_classes = {int(c) for r in val.records for c in r.class_ids[r.ignore]}
    same_matches = []
    sampled_diffs = []
    for k, name in enumerate(val.names):
        coco_k = coco.per_class_detail[name]["AP50"]
        if coco_k is None or k in crowd_classes:
            continue
        recall, precision, _ = curves.curves[k]
        diff = abs(_ap_101(recall, precision) * 100 - coco_k)
        sampled_diffs.append(diff)
        if diff < 1e-6:  # identical matches: only the interpolation differs
            same_matches.append(name)
            assert abs(voc.per_class[name] - coco_k) <= 100 / 101 + 1e-6, name
    print(f"{len(same_matches)} of {len(sampled_diffs)} classes without crowd boxes identical when sampled "
          f"at 101 points; mean |difference| {np.mean(sampled_diffs):.3f}")
    assert len(sampled_diffs) >= 70
    assert len(same_matches) >= 0.9 * len(sampled_diffs)
    assert np.mean(sampled_diffs) < 0.1


def test_cli_onnxruntime_matches_official_ap(tmp_path, coco_mini, nano_onnx, capsys):
    out = tmp_path / "metrics.json"
    code = main([
        "eval", "--data", str(coco_mini), "--split", "val2017", "--backend", "onnxruntime",
        "--weights", str(nano_onnx), "--json-out", str(out), "--plots", str(tmp_path / "plots"), "--no-progress",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("Average Precision") == 6 and printed.count("Average Recall") == 6
    assert "per-class AP" in printed
    doc = json.loads(out.read_text())
    assert doc["AP"] == pytest.approx(OFFICIAL_AP, abs=0.2)
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl"} <= set(doc)
    assert len(doc["per_class"]) == 80 and sum(v is None for v in doc["per_class"].values()) == 2
    for name in ("pr_curves.png", "pr_per_class.png", "confusion_matrix.png", "worst_images.png"):
        image = cv2.imread(str(tmp_path / "plots" / name))
        assert image is not None and image.std() > 10, name
