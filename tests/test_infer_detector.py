"""Detector: the API contract, bundled weights on dog.jpg, backends agreeing, parity with the reference."""

import copy

import cv2
import numpy as np
import pytest
import torch

import yoloxkit
from yoloxkit.coco_names import COCO_NAMES
from yoloxkit.errors import ImageReadError, InferenceError, UnknownModelError, WeightsMismatchError
from yoloxkit.infer import Detections, Detector
from yoloxkit.infer.fuse import FusedConvAct, fuse_model
from yoloxkit.models import build_network
from yoloxkit.weights import bundled_weights_path, read_checkpoint, save_checkpoint

from tests.parity.reference import build_reference, randomize


@pytest.fixture(scope="module")
def detector():
    return Detector()


@pytest.fixture(scope="module")
def dog_results(detector, dog_jpg):
    return detector(str(dog_jpg))


def _assert_same(expected, actual, box_atol=0.05, score_atol=1e-4):
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        assert len(e) == len(a)
        np.testing.assert_array_equal(e.class_ids, a.class_ids)
        np.testing.assert_allclose(e.scores, a.scores, atol=score_atol)
        np.testing.assert_allclose(e.boxes, a.boxes, atol=box_atol)


def test_bundled_weights_find_dog_bicycle_and_car(detector, dog_results):
    assert detector.model_name == "yolox-nano" and detector.backend == "torch"
    assert detector.size == (416, 416) and detector.num_classes == 80 and detector.names == list(COCO_NAMES)
    [r] = dog_results
    best = {}
    for name, score in zip(r.class_names, r.scores.tolist()):
        best[name] = max(score, best.get(name, 0.0))
    assert best["dog"] >= 0.5 and best["bicycle"] >= 0.5
    assert max(best.get("car", 0.0), best.get("truck", 0.0)) >= 0.5


def test_detections_contract(dog_results, dog_jpg):
    [r] = dog_results
    assert isinstance(r, Detections) and len(r) == len(r.scores) > 0
    assert r.boxes.dtype == np.float32 and r.boxes.shape == (len(r), 4)
    assert r.scores.dtype == np.float32 and r.class_ids.dtype == np.int64
    assert (r.image, r.width, r.height) == ("dog.jpg", 768, 576)
    assert (np.diff(r.scores) <= 0).all()  # sorted by decreasing score
    assert (r.boxes[:, 0] >= 0).all() and (r.boxes[:, 2] <= 768).all() and (r.boxes[:, 3] <= 576).all()
    assert (r.boxes[:, 2] > r.boxes[:, 0]).all() and (r.boxes[:, 3] > r.boxes[:, 1]).all()
    payload = r.to_json()
    assert set(payload) == {"image", "width", "height", "detections"}
    first = payload["detections"][0]
    assert set(first) == {"box", "score", "class_id", "name"}
    assert first["name"] == COCO_NAMES[first["class_id"]] and isinstance(first["class_id"], int)
    np.testing.assert_allclose(first["box"], r.boxes[0], atol=0.01)
    assert "dog.jpg" in repr(r) and "dog" in repr(r)
    plotted = r.plot()
    original = cv2.imread(str(dog_jpg))
    assert plotted.shape == original.shape and (plotted != original).any()


def test_filter(dog_results):
    [r] = dog_results
    strong = r.filter(conf=0.5)
    assert len(strong) < len(r) and (strong.scores >= 0.5).all()
    dogs = r.filter(classes=["dog"])
    assert len(dogs) >= 1 and set(dogs.class_names) == {"dog"}
    assert len(r.filter(classes=[16])) == len(dogs)
    with pytest.raises(ValueError, match="unicorn"):
        r.filter(classes=["unicorn"])


def test_paths_arrays_and_batches_agree(detector, dog_jpg, dog_results):
    image = cv2.imread(str(dog_jpg))
    small = cv2.resize(image, (300, 200))
    batched = detector([str(dog_jpg), image, small, small[:, :, 0]])
    assert [r.image for r in batched] == ["dog.jpg", None, None, None]
    _assert_same(dog_results, batched[:1], box_atol=1e-3, score_atol=1e-5)
    _assert_same(dog_results, batched[1:2], box_atol=1e-3, score_atol=1e-5)
    alone = detector.predict_arrays([small])
    _assert_same(alone, batched[2:3], box_atol=1e-3, score_atol=1e-5)
    assert batched[2].width == 300 and batched[2].height == 200


def test_per_call_overrides(detector, dog_jpg, dog_results):
    [low] = detector.predict(str(dog_jpg), conf=0.05)
    assert len(low) > len(dog_results[0]) and low.scores.min() >= 0.05
    [dogs] = detector.predict(str(dog_jpg), classes=["dog", "bicycle"])
    assert set(dogs.class_names) == {"dog", "bicycle"}
    with pytest.raises(InferenceError, match="unknown class 'unicorn'"):
        detector.predict(str(dog_jpg), classes=["unicorn"])
    with pytest.raises(InferenceError, match="conf"):
        detector.predict(str(dog_jpg), conf=1.5)


def test_onnxruntime_backend_gives_the_same_detections(detector, dog_jpg, coco_mini):
    images = [str(dog_jpg)] + [str(p) for p in sorted((coco_mini / "val2017").glob("*.jpg"))[:1]]
    ort = Detector(backend="onnxruntime")
    assert ort.backend == "onnxruntime" and ort.model is None and ort.names == detector.names
    _assert_same(detector(images), ort(images))


def test_official_onnx_file_runs_in_onnxruntime(detector, nano_onnx, dog_jpg, dog_results):
    det = Detector(weights=nano_onnx)
    assert det.backend == "onnxruntime" and det.size == (416, 416) and det.model_name == "yolox-nano"
    # The file has a static batch of 1: a batch of two still works.
    both = det([str(dog_jpg), str(dog_jpg)])
    # The bundled checkpoint was converted from this file (BatchNorms re-calibrated): same detections.
    _assert_same(dog_results, both[:1])
    _assert_same(both[:1], both[1:])
    with pytest.raises(InferenceError, match="fixed input size 416x416"):
        Detector(weights=nano_onnx, size=320)


def test_matches_the_reference_pipeline_end_to_end(dog_jpg):
    from yolox.data.data_augment import preproc
    from yolox.utils import postprocess as reference_postprocess

    state = read_checkpoint(bundled_weights_path())["model"]
    reference = build_reference("yolox-nano").eval()
    reference.load_state_dict(state)
    image = cv2.imread(str(dog_jpg))
    tensor, ratio = preproc(image, (416, 416))
    with torch.no_grad():
        [out] = reference_postprocess(reference(torch.from_numpy(tensor)[None]), 80, 0.05, 0.45)
    out = out.numpy()
    boxes = out[:, :4] / ratio
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, image.shape[1])
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, image.shape[0])
    [ours] = Detector(conf=0.05).predict_arrays([image])
    assert len(ours) == len(out) > 5
    order = np.argsort(-out[:, 4] * out[:, 5], kind="stable")
    np.testing.assert_allclose(ours.scores, (out[:, 4] * out[:, 5])[order], atol=1e-4)
    np.testing.assert_array_equal(ours.class_ids, out[order, 6].astype(np.int64))
    np.testing.assert_allclose(ours.boxes, boxes[order], atol=0.02)


def test_fusion_keeps_outputs_and_leaves_the_model_alone():
    model = build_network("yolox-nano").eval()
    randomize(model, seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_model(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, FusedConvAct) for m in fused.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.rand(2, 3, 96, 128) * 255
    with torch.no_grad():
        expected, got = model(x), fused(x)
    scale = expected.abs().max()
    assert (got - expected).abs().max() <= 1e-4 * scale


def test_from_model_wraps_without_modifying(tmp_path, dog_jpg):
    model = build_network("yolox-nano", num_classes=3)
    randomize(model, seed=5)
    model.train()
    before = copy.deepcopy(model.state_dict())
    names = ["cat", "dog", "bird"]
    det = Detector.from_model(model, names, 256, conf=0.2, nms=0.65)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert det.names == names and det.size == (256, 256) and det.num_classes == 3
    [r] = det(str(dog_jpg))
    assert r.names == names and len(r) > 0
    path = save_checkpoint(tmp_path / "three.pth", model, names=names, model_name="yolox-nano")
    from_file = Detector(weights=path, size=256, conf=0.2, nms=0.65)
    assert from_file.names == names and from_file.model_name == "yolox-nano"
    _assert_same([r], from_file(str(dog_jpg)), box_atol=1e-3, score_atol=1e-5)


def test_class_names_default_and_override(tmp_path):
    model = build_network("yolox-nano", num_classes=2)
    path = save_checkpoint(tmp_path / "two.pth", model)
    assert Detector(weights=path).names == ["class0", "class1"]
    assert Detector(weights=path, names=["a", "b"]).names == ["a", "b"]
    with pytest.raises(InferenceError, match="3 class names"):
        Detector(weights=path, names=["a", "b", "c"])


def test_bad_arguments(tmp_path, monkeypatch, dog_jpg):
    with pytest.raises(UnknownModelError, match="yolox-q"):
        Detector("yolox-q")
    with pytest.raises(InferenceError, match="unknown backend 'tensorrt'.*onnxruntime.*torch"):
        Detector(backend="tensorrt")
    with pytest.raises(WeightsMismatchError):
        Detector("yolox-tiny", weights=bundled_weights_path())
    with pytest.raises(InferenceError, match="size"):
        Detector(size=100)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InferenceError, match="CUDA is not available"):
        Detector(device="cuda")
    det = Detector()
    with pytest.raises(ImageReadError, match="missing.jpg"):
        det([str(dog_jpg), str(tmp_path / "missing.jpg")])


def test_top_level_exports():
    assert yoloxkit.Detector is Detector and yoloxkit.Detections is Detections


def test_missing_onnxruntime_names_the_install_command(monkeypatch):
    import sys

    from yoloxkit.errors import MissingDependencyError
    from yoloxkit.infer.backends import OnnxRuntimeBackend

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(MissingDependencyError, match="pip install onnxruntime"):
        OnnxRuntimeBackend(b"unused")


def test_half_precision_needs_cuda():
    with pytest.raises(InferenceError, match="CUDA"):
        Detector(half=True)
    with pytest.raises(InferenceError, match="does not support half"):
        Detector(backend="onnxruntime", half=True)


def test_from_pretrained_is_the_constructor_and_runner_is_a_deprecated_alias(detector, dog_jpg, dog_results):
    same = Detector.from_pretrained("yolox-nano")
    assert same.model_name == detector.model_name and same.size == detector.size and same.names == detector.names
    _assert_same(dog_results, same(str(dog_jpg)))
    with pytest.warns(DeprecationWarning, match="Detector.network"):
        runner = detector.runner
    assert runner is detector.network and detector.backend == detector.network.name == "torch"
