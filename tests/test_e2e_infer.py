"""NMS-free inference for end-to-end (-e2e) models: top-k post-processing, the Detector's choice
of post-processing (and its overrides), the duplicate measure, and eval/predict on an e2e model."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

import yoloxkit
from yoloxkit.cli import main
from yoloxkit.data.records import ImageRecord
from yoloxkit.evaluate import ImagePredictions, duplicate_stats
from yoloxkit.evaluate.duplicates import duplicated_gts
from yoloxkit.infer.topk import select_topk, topk_postprocess
from yoloxkit.weights import load_model, save_checkpoint

from train_subset import make_subset


def _row(cx, cy, w, h, obj, cls):
    return [cx, cy, w, h, obj, *cls]


@pytest.fixture
def overlapping():
    rows = [
        _row(50, 50, 20, 20, 0.9, [0.1, 0.8, 0.2]),  # class 1, score 0.72
        _row(52, 50, 20, 20, 0.8, [0.1, 0.7, 0.1]),  # class 1, 0.56, overlaps the first (NMS would drop it)
        _row(52, 50, 20, 20, 0.9, [0.0, 0.1, 0.6]),  # class 2, 0.54
        _row(100, 100, 10, 10, 0.1, [0.9, 0.0, 0.0]),  # 0.09: under conf
        _row(5, 5, 20, 20, 1.0, [0.5, 0.0, 0.0]),  # class 0, 0.5, sticks out of the image: clipped
    ]
    return torch.tensor([rows], dtype=torch.float32)


def test_topk_keeps_overlapping_boxes_sorted_and_in_image_pixels(overlapping):
    [(boxes, scores, class_ids)] = topk_postprocess(overlapping, [2.0], [(40, 60)], conf=0.25)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and class_ids.dtype == np.int64
    np.testing.assert_allclose(scores, [0.72, 0.56, 0.54, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(class_ids, [1, 1, 2, 0])
    np.testing.assert_allclose(boxes[:2], [[20, 20, 30, 30], [21, 20, 31, 30]], atol=1e-5)
    np.testing.assert_allclose(boxes[3], [0, 0, 7.5, 7.5], atol=1e-5)


def test_topk_keeps_k_conf_and_classes(overlapping):
    [(_, scores, ids)] = topk_postprocess(overlapping, [1.0], [(200, 200)], conf=0.25, max_dets=2)
    np.testing.assert_allclose(scores, [0.72, 0.56], rtol=1e-6)
    [(_, scores, _)] = topk_postprocess(overlapping, [1.0], [(200, 200)], conf=0.0)
    assert len(scores) == 5 and scores[-1] == pytest.approx(0.09)
    [(_, scores, _)] = topk_postprocess(overlapping, [1.0], [(200, 200)], conf=0.6)
    np.testing.assert_allclose(scores, [0.72], rtol=1e-6)
    [(_, scores, ids)] = topk_postprocess(overlapping, [1.0], [(200, 200)], conf=0.25, classes=[2, 0])
    np.testing.assert_array_equal(ids, [2, 0])
    # max_dets over the anchor count, and images of one batch are independent
    batch = torch.cat([overlapping, torch.zeros_like(overlapping)])
    first, second = topk_postprocess(batch, [1.0, 1.0], [(200, 200)] * 2, conf=0.25, max_dets=1000)
    assert len(first[1]) == 4 and len(second[1]) == 0
    boxes, scores, ids, valid = select_topk(batch, 0.25, max_dets=3)
    assert boxes.shape == (2, 3, 4) and valid.tolist() == [[True] * 3, [False] * 3]
    with pytest.raises(ValueError, match="max_dets"):
        select_topk(batch, 0.25, max_dets=0)


# --------------------------------------------------------------------------------------------
# Detector on an end-to-end network


@pytest.fixture(scope="module")
def e2e_model():
    """yolox-nano-e2e with the bundled weights and the PSS biases high: σ(pss) ≈ 1, so its
    scores equal the base model's and its duplicates are the base model's without NMS."""
    model = load_model("yolox-nano-e2e").model
    for conv in model.head.pss_preds:
        torch.nn.init.constant_(conv.bias, 20.0)
    return model


def _overlapping_pairs(det, iou=0.5) -> int:
    from torchvision.ops import box_iou

    overlap = box_iou(torch.from_numpy(det.boxes), torch.from_numpy(det.boxes)).numpy()
    same = det.class_ids[:, None] == det.class_ids[None, :]
    return int(np.triu((overlap >= iou) & same, k=1).sum())


def test_e2e_detector_uses_topk_and_ignores_nms(e2e_model, dog_jpg, caplog):
    names = yoloxkit.Detector().names
    with caplog.at_level(logging.WARNING, logger="yoloxkit"):
        e2e = yoloxkit.Detector.from_model(e2e_model, names, 320, model_name="yolox-nano-e2e")
    assert not [r for r in caplog.records if "--nms is ignored" in r.getMessage()]  # no nms given: no note
    assert e2e.end_to_end and e2e.nms_free
    assert e2e.describe().endswith(", NMS-free (top-k 100)")
    free = e2e(str(dog_jpg))[0]
    assert _overlapping_pairs(free) > 0
    # nms per call is ignored
    assert len(e2e.predict(str(dog_jpg), nms=0.1)[0]) == len(free)

    with_nms = yoloxkit.Detector.from_model(e2e_model, names, 320, model_name="yolox-nano-e2e", nms_free=False)
    assert not with_nms.nms_free and with_nms.describe().endswith(", NMS 0.45 (nms_free=False)")
    suppressed = with_nms(str(dog_jpg))[0]
    assert _overlapping_pairs(suppressed) == 0 and len(free) > len(suppressed) >= 3
    base = yoloxkit.Detector("yolox-nano", size=320)(str(dog_jpg))[0]  # σ(pss) ≈ 1: the base model's NMS result
    np.testing.assert_array_equal(suppressed.class_ids, base.class_ids)
    np.testing.assert_allclose(suppressed.boxes, base.boxes, atol=1e-3)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="yoloxkit"):  # e.g. training evaluation: nms ignored silently
        quiet = yoloxkit.Detector.from_model(e2e_model, names, 320, model_name="yolox-nano-e2e", nms=0.6)
    assert not [r for r in caplog.records if "--nms is ignored" in r.getMessage()]
    assert len(quiet(str(dog_jpg))[0]) == len(free)

    few = yoloxkit.Detector.from_model(e2e_model, names, 320, model_name="yolox-nano-e2e", max_dets=3)
    top = few(str(dog_jpg))[0]
    np.testing.assert_allclose(top.scores, free.scores[:3], rtol=1e-6)


def test_base_model_nms_free_override_keeps_duplicates(dog_jpg):
    base = yoloxkit.Detector("yolox-nano", size=320)
    assert not base.nms_free and not base.end_to_end and "NMS" not in base.describe()
    free = yoloxkit.Detector("yolox-nano", size=320, nms_free=True)
    assert free.nms_free and free.describe().endswith("NMS-free (top-k 100)")
    assert _overlapping_pairs(free(str(dog_jpg))[0]) > _overlapping_pairs(base(str(dog_jpg))[0]) == 0
    with pytest.raises(yoloxkit.InferenceError, match="max_dets"):
        yoloxkit.Detector("yolox-nano", max_dets=0)


def test_zoo_name_e2e_detector_is_nms_free_and_notes_a_given_nms(caplog):
    with caplog.at_level(logging.WARNING, logger="yoloxkit"):
        detector = yoloxkit.Detector("yolox-nano-e2e", size=256, nms=0.6)
    assert detector.end_to_end and detector.nms_free and detector.model_name == "yolox-nano-e2e"
    notes = [r.getMessage() for r in caplog.records if "--nms is ignored" in r.getMessage()]
    assert notes == ["yolox-nano-e2e is NMS-free: --nms is ignored"]
    with caplog.at_level(logging.WARNING, logger="yoloxkit"):
        yoloxkit.Detector("yolox-nano", size=256, nms_free=True, nms=0.6)
    assert caplog.records[-1].getMessage() == "yolox-nano runs NMS-free (nms_free=True): --nms is ignored"


# --------------------------------------------------------------------------------------------
# the duplicate measure


def test_duplicated_gts_and_stats():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32)
    classes = np.array([0, 0, 1])
    record = ImageRecord("a.jpg", 60, 60, gt, classes, ignore=np.array([False, False, True]))
    pred = ImagePredictions(
        np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [21, 20, 31, 30], [20, 20, 30, 30],
                  [40, 40, 50, 50], [40, 40, 50, 50]], np.float32),
        np.array([0.9, 0.8, 0.9, 0.2, 0.9, 0.9, 0.9]),  # gt1's second hit is under 0.3; its third is class 1
        np.array([0, 0, 0, 0, 1, 1, 1]),
    )
    assert duplicated_gts(gt, classes, pred).tolist() == [True, False, True]
    assert duplicated_gts(gt, classes, pred, conf=0.1).tolist() == [True, True, True]
    assert duplicated_gts(gt, classes, pred, iou=0.95).tolist() == [False, False, True]
    stats = duplicate_stats([record], [pred])  # gt2 is crowd: out of the count though duplicated
    assert (stats.gts, stats.duplicated, stats.key) == (2, 1, "duplicates@0.3")
    assert stats.fraction == pytest.approx(0.5)
    assert duplicate_stats([record], [pred], classes=[1]).gts == 0
    assert duplicate_stats([record], [ImagePredictions.empty()]).fraction == 0.0


# --------------------------------------------------------------------------------------------
# eval and predict on an e2e checkpoint


@pytest.fixture(scope="module")
def e2e_checkpoint(e2e_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("e2e") / "nano-e2e.pth"
    names = yoloxkit.Detector().names
    save_checkpoint(path, e2e_model, names=names, model_name="yolox-nano-e2e", input_size=256)
    return path


def test_eval_e2e_reports_duplicates_and_nms_free(e2e_checkpoint, coco_mini, tmp_path, caplog):
    data = make_subset(coco_mini, tmp_path / "data", 12, split="val2017", splits=("val2017",))
    docs = {}
    for label, extra in (("e2e", []), ("nms", ["--no-nms-free"])):
        out = tmp_path / f"{label}.json"
        with caplog.at_level(logging.WARNING, logger="yoloxkit"):
            code = main(["eval", "--data", str(data), "--weights", str(e2e_checkpoint), "--nms", "0.65",
                         "--no-progress", "--json-out", str(out), *extra])
        assert code == 0
        docs[label] = json.loads(out.read_text())
    notes = [r.getMessage() for r in caplog.records if "--nms is ignored" in r.getMessage()]
    assert notes == ["yolox-nano-e2e is NMS-free: --nms is ignored"]  # the NMS run does not ignore it
    assert docs["e2e"]["nms_free"] is True and docs["nms"]["nms_free"] is False
    e2e, nms = docs["e2e"]["duplicates"], docs["nms"]["duplicates"]
    assert e2e["gts"] == nms["gts"] > 0 and (e2e["conf"], e2e["iou"]) == (0.3, 0.5)
    # PSS ≈ 1 (an untrained branch): without NMS the base detector's duplicates show
    assert docs["e2e"]["duplicates@0.3"] > docs["nms"]["duplicates@0.3"]
    assert docs["nms"]["duplicates@0.3"] == pytest.approx(100.0 * nms["duplicated"] / nms["gts"], abs=1e-3)


def test_predict_e2e_notes_ignored_nms(e2e_checkpoint, dog_jpg, tmp_path, capsys, caplog):
    out = tmp_path / "dets.json"
    with caplog.at_level(logging.WARNING, logger="yoloxkit"):
        code = main(["predict", str(dog_jpg), "--weights", str(e2e_checkpoint), "--nms", "0.3", "--no-save",
                     "--json-out", str(out), "--max-dets", "4"])
    assert code == 0
    assert "NMS-free (top-k 4)" in capsys.readouterr().out
    assert any(r.getMessage() == "yolox-nano-e2e is NMS-free: --nms is ignored" for r in caplog.records)
    [record] = json.loads(out.read_text())
    assert len(record["detections"]) == 4


def test_serve_groups_nms_free_requests_by_class_filter():
    from yoloxkit.serve.detect import DetectJob, run_jobs

    class Result:
        def filter(self, conf, classes):
            return self

        def to_json(self):
            return {"detections": []}

    class FakeDetector:
        nms_free = True

        def __init__(self):
            self.calls = []

        def predict_arrays(self, images, **options):
            self.calls.append((len(images), options))
            return [Result() for _ in images]

    image = np.zeros((8, 8, 3), np.uint8)
    jobs = [DetectJob(image, 0.3, 0.45), DetectJob(image, 0.2, 0.7), DetectJob(image, 0.5, 0.45, frozenset({2, 1}))]
    detector = FakeDetector()
    assert len(run_jobs(detector, jobs)) == 3
    # nms differs but is ignored: one pass for the unfiltered jobs; the filtered one runs with its classes
    assert detector.calls == [(2, {"conf": 0.2, "nms": None}), (1, {"conf": 0.5, "nms": None, "classes": [1, 2]})]
    detector.nms_free = False
    detector.calls.clear()
    run_jobs(detector, jobs)
    assert detector.calls == [(2, {"conf": 0.3, "nms": 0.45}), (1, {"conf": 0.2, "nms": 0.7})]
