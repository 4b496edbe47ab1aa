"""evaluate() with a plain predict function: batching, class mapping by name, plots, CLI errors."""

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from yoloxkit.cli import main
from yoloxkit.data.records import DetectionData, ImageRecord
from yoloxkit.errors import DatasetError
from yoloxkit.evaluate import evaluate
from yoloxkit.evaluate.matching import confusion_matrix, greedy_match, match_predictions
from yoloxkit.evaluate.predictions import ImagePredictions
from yoloxkit.evaluate.runner import ClassMapping


@pytest.fixture
def tiny_data(tmp_path):
    """Three small images on disk with two classes."""
    records = []
    rng = np.random.default_rng(0)
    layouts = [([[10, 10, 60, 60]], [0]), ([[20, 30, 90, 70], [5, 5, 25, 25]], [1, 0]), ([[40, 40, 110, 90]], [1])]
    for i, (boxes, classes) in enumerate(layouts):
        path = tmp_path / f"img{i}.png"
        image = (rng.random((100, 120, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(path), image)
        records.append(ImageRecord(path, 120, 100, np.array(boxes, np.float32), np.array(classes, np.int64)))
    return DetectionData(["cat", "dog"], records, "voc", "val", tmp_path)


class FakePredictor:
    """Returns the ground truth (by file name) with model class order ``names``."""

    def __init__(self, data, names, drop=()):
        self.names = names
        self.truth = {Path(r.path).name: r for r in data.records}
        self.batches = []
        self.drop = set(drop)

    def __call__(self, paths):
        self.batches.append(len(paths))
        out = []
        for path in paths:
            r = self.truth[Path(path).name]
            keep = np.array([c not in self.drop for c in r.class_ids], bool)
            lower = [n.lower() for n in self.names]
            model_ids = np.array([lower.index(["cat", "dog"][c]) if k else -1 for c, k in zip(r.class_ids, keep)])
            out.append(SimpleNamespace(boxes=r.boxes[keep], scores=np.full(keep.sum(), 0.9), class_ids=model_ids[keep]))
        return out


def test_batches_and_name_mapping(tiny_data):
    predictor = FakePredictor(tiny_data, ["person", "Dog", "cat"])  # other order, other case, extra class
    result = evaluate(predictor, tiny_data, batch_size=2, progress=False)
    assert predictor.batches == [2, 1]
    assert result.metrics["mAP50"] == 100.0
    assert result.num_predictions == 4


def test_unknown_dataset_class_warns_and_is_null(tiny_data):
    predictor = FakePredictor(tiny_data, ["cat", "person"], drop={1})
    with pytest.warns(UserWarning, match="does not know 1 dataset class"):
        result = evaluate(predictor, tiny_data, progress=False)
    assert result.per_class == {"cat": 100.0, "dog": None}
    assert result.unknown_classes == ["dog"]
    assert result.primary == 100.0


def test_no_overlap_is_a_clear_error(tiny_data):
    with pytest.raises(DatasetError, match="none of the model's 2 class names"):
        evaluate(lambda paths: [], tiny_data, names=["person", "car"], progress=False)


def test_prediction_free_model_scores_zero(tiny_data):
    empty = SimpleNamespace(boxes=np.zeros((0, 4)), scores=np.zeros(0), class_ids=np.zeros(0, np.int64))
    result = evaluate(lambda paths: [empty] * len(paths), tiny_data, progress=False, metric="coco")
    assert result.metrics["AP"] == 0.0


def test_detector_thresholds_are_passed_to_predict(tiny_data):
    calls = []

    class WithPredict(FakePredictor):
        def predict(self, paths, conf=None, nms=None):
            calls.append((conf, nms))
            return self(paths)

    evaluate(WithPredict(tiny_data, ["cat", "dog"]), tiny_data, conf=0.01, nms=0.65, progress=False)
    assert calls and set(calls) == {(0.01, 0.65)}


def test_class_mapping_drops_unmapped_predictions():
    mapping = ClassMapping(["a", "b_c", "z"], ["B-C", "a"])
    assert mapping.model_to_data.tolist() == [1, 0, -1]
    mapped = mapping.apply(np.zeros((3, 4)), np.array([0.1, 0.2, 0.3]), np.array([0, 1, 2]))
    assert mapped.class_ids.tolist() == [1, 0]


def test_greedy_match_takes_highest_iou_first():
    iou = np.array([[0.6, 0.9], [0.7, 0.0]])
    assert sorted(map(tuple, greedy_match(iou, 0.5).tolist())) == [(0, 1), (1, 0)]
    assert greedy_match(iou, 0.95).shape == (0, 2)


def test_confusion_matrix_counts(tiny_data):
    r0, r1, _ = tiny_data.records
    predictions = [
        ImagePredictions(r0.boxes, [0.9], [1]),  # cat predicted as dog
        ImagePredictions(np.concatenate([r1.boxes[:1], [[100, 80, 119, 99]]]), [0.9, 0.8], [1, 0]),
        ImagePredictions.empty(),  # dog missed
    ]
    matrix = confusion_matrix(tiny_data.records, predictions, 2)
    # rows predicted (cat, dog, background), columns true (cat, dog, background)
    assert matrix.tolist() == [[0, 0, 1], [1, 1, 0], [1, 1, 0]]
    match = match_predictions(r1, predictions[1])
    assert (match.tp, match.fp, match.fn) == (1, 1, 1)


def assert_png_not_blank(path: Path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 200
    assert image.std() > 10  # drawn on, not a flat canvas
    assert (image.std(axis=(0, 1)) > 5).all()


def test_plots_are_written_and_not_blank(tiny_data, tmp_path):
    rng = np.random.default_rng(3)

    def noisy(paths):
        out = []
        for path in paths:
            r = next(rec for rec in tiny_data.records if str(rec.path) == path)
            boxes = np.concatenate([r.boxes + rng.normal(0, 3, r.boxes.shape), [[0, 0, 30, 30]]])
            out.append(SimpleNamespace(boxes=boxes, scores=rng.random(len(boxes)) * 0.7 + 0.3,
                                       class_ids=np.concatenate([r.class_ids, [1]])))
        return out

    result = evaluate(noisy, tiny_data, plots_dir=tmp_path / "plots", progress=False)
    names = sorted(p.name for p in result.plots)
    assert names == ["confusion_matrix.png", "pr_curves.png", "pr_per_class.png", "worst_images.png"]
    for path in result.plots:
        assert_png_not_blank(path)
    assert not [p for p in (tmp_path / "plots").iterdir() if p.name.startswith(".")]  # no temp files left


def test_cli_missing_data_dir(tmp_path, capsys):
    code = main(["eval", "--data", str(tmp_path / "nope"), "--split", "val"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error:") and "nope" in err and len(err.splitlines()) == 1


def test_cli_unknown_split_lists_splits(coco_mini, capsys):
    code = main(["eval", "--data", str(coco_mini), "--split", "test"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "val2017" in err and "train2017" in err


def test_cli_help_documents_metrics(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert "YOLO-txt data is scored" in out and "--plots" in out and "--backend" in out
