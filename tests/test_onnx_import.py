"""Importing the official YOLOX-Nano ONNX export back into the PyTorch model."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from yoloxkit.errors import ImageReadError, WeightsError, WeightsMismatchError
from yoloxkit.models import build_network
from yoloxkit.weights.calibration import ChannelStats, calibration_images
from yoloxkit.weights.identify import guess_model_name
from yoloxkit.weights.onnx_reader import read_onnx_weights
from yoloxkit.weights.pairing import pair_convs
from yoloxkit.weights.unfold import _verify, import_onnx_into


def letterboxed(path, size: int = 416) -> np.ndarray:
    """``[1, 3, size, size]`` float32: keep-ratio resize, 114 padding bottom/right, BGR 0-255."""
    image = cv2.imread(str(path))
    ratio = min(size / image.shape[0], size / image.shape[1])
    resized = cv2.resize(image, (int(image.shape[1] * ratio), int(image.shape[0] * ratio)))
    canvas = np.full((size, size, 3), 114, np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas.transpose(2, 0, 1)[None].astype(np.float32)


def raw_output(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    model.eval()
    model.head.decode_in_inference = False
    try:
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()
    finally:
        model.head.decode_in_inference = True


@pytest.fixture(scope="module")
def onnx_weights(nano_onnx):
    return read_onnx_weights(nano_onnx)


@pytest.fixture(scope="module")
def dog_batch(dog_jpg) -> np.ndarray:
    return letterboxed(dog_jpg)


@pytest.fixture(scope="module")
def ort_dog(nano_onnx, dog_batch) -> np.ndarray:
    session = ort.InferenceSession(str(nano_onnx), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": dog_batch})[0]


@pytest.fixture(scope="module")
def imported(onnx_weights):
    """yolox-nano with the ONNX weights, calibrated on the default (bundled demo picture) set."""
    model = build_network("yolox-nano")
    report = import_onnx_into(model, onnx_weights)
    return model.eval(), report


def test_reads_the_conv_graph(onnx_weights):
    assert len(onnx_weights.convs) == 113
    assert onnx_weights.input_hw == (416, 416)
    assert onnx_weights.num_classes == 80
    assert onnx_weights.convs[0].sources == frozenset()  # fed by the image (through the space-to-depth stem)
    assert all(conv.sources for conv in onnx_weights.convs[1:])


def test_guesses_yolox_nano(onnx_weights):
    assert guess_model_name(onnx_weights) == "yolox-nano"


def test_import_reproduces_onnxruntime(imported, dog_batch, ort_dog):
    model, report = imported
    assert report.num_convs == 113 and report.num_calibration_images >= 8
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-3
    ours = raw_output(model, dog_batch)
    assert ours.shape == ort_dog.shape == (1, 3549, 85)
    assert np.abs(ours - ort_dog).max() <= 1e-3
    assert ort_dog[0, :, 4].max() > 0.8  # a real picture: confident detections exist


def test_state_dict_loads_into_the_reference_model(imported, dog_batch, ort_dog):
    """Official keys: the reference implementation loads the imported weights strictly and
    reproduces the ONNX outputs with them."""
    from parity.reference import build_reference

    model, _ = imported
    reference = build_reference("yolox-nano", 80).eval()
    reference.load_state_dict(model.state_dict(), strict=True)
    reference.head.decode_in_inference = False
    with torch.no_grad():
        out = reference(torch.from_numpy(dog_batch)).numpy()
    assert np.abs(out - ort_dog).max() <= 1e-3


def test_batchnorm_is_calibrated_not_identity(imported):
    model, _ = imported
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 113 - 9  # every conv but the 9 prediction convs
    for bn in bns:
        assert torch.allclose(bn.weight, torch.sqrt(bn.running_var + bn.eps), rtol=1e-5, atol=1e-6)
    variances = torch.cat([bn.running_var for bn in bns])
    assert variances.min() >= 0
    assert (variances - 1.0).abs().median() > 0.05  # real statistics, not var 1


def _train_step_drift(
    model: nn.Module, train_batch: np.ndarray, dog_batch: np.ndarray, before: np.ndarray
) -> tuple[float, float]:
    """One train-mode forward (BN running stats updated), then (mean |obj - before| on dog, max obj)."""
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(train_batch))
    after = raw_output(model, dog_batch)[0, :, 4]
    return float(np.abs(after - before).mean()), float(after.max())


def test_stays_stable_in_train_mode(imported, coco_mini, dog_batch, ort_dog):
    """A train-mode pass on real images keeps the model working; an identity BN collapses."""
    model, _ = imported
    images = sorted((coco_mini / "train2017").glob("*.jpg"))[:2]
    train_batch = np.concatenate([letterboxed(p) for p in images])

    calibrated = copy.deepcopy(model)
    before = ort_dog[0, :, 4]  # the imported model reproduces it (test above)
    drift, top = _train_step_drift(calibrated, train_batch, dog_batch, before)
    assert drift < 0.01 and top > 0.7

    identity = copy.deepcopy(model)  # the naive un-folding: mean 0, var 1, gamma 1, beta = folded bias
    with torch.no_grad():
        for bn in (m for m in identity.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.bias.sub_(bn.running_mean)  # back to the folded bias
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.fill_(1.0)
    identity_drift, identity_top = _train_step_drift(identity, train_batch, dog_batch, before)
    assert identity_drift > 10 * drift
    assert identity_top < top - 0.2


def test_calibration_on_given_images(onnx_weights, coco_mini, dog_batch, ort_dog):
    model = build_network("yolox-nano")
    images = sorted((coco_mini / "train2017").glob("*.jpg"))[:3]
    report = import_onnx_into(model, onnx_weights, images, verify=False)
    assert report.num_calibration_images == 3 and report.max_abs_diff is None
    assert np.abs(raw_output(model, dog_batch) - ort_dog).max() <= 1e-3


def test_wrong_model_size_is_a_mismatch(onnx_weights):
    with pytest.raises(WeightsMismatchError, match=r"looks like yolox-nano .*pass --model yolox-nano"):
        pair_convs(build_network("yolox-tiny"), onnx_weights)


def test_wrong_class_count_is_a_mismatch(onnx_weights):
    with pytest.raises(WeightsMismatchError, match="cls_preds"):
        pair_convs(build_network("yolox-nano", num_classes=20), onnx_weights)


def test_verification_catches_a_wrong_import(imported, onnx_weights, dog_batch):
    model = copy.deepcopy(imported[0])
    with torch.no_grad():
        model.head.obj_preds[0].bias.add_(3.0)
    with pytest.raises(WeightsMismatchError, match="does not reproduce the ONNX outputs"):
        _verify(model, onnx_weights, dog_batch)


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage" * 50, b"PK\x03\x04 not a model"])
def test_garbled_onnx_is_a_weights_error(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="bad.onnx"):
        read_onnx_weights(path)


def test_missing_onnx_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        read_onnx_weights(tmp_path / "missing.onnx")


def test_calibration_image_errors(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        calibration_images([tmp_path / "nope"])
    with pytest.raises(ImageReadError, match="no images"):
        calibration_images(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        calibration_images(tmp_path)


def test_default_calibration_uses_the_demo_picture(caplog):
    with caplog.at_level("WARNING", logger="yoloxkit"):
        images = calibration_images(None)
    assert len(images) >= 8 and all(img.dtype == np.uint8 and img.ndim == 3 for img in images)
    assert "demo picture" in caplog.text


def test_channel_stats_merge_batches_exactly():
    gen = torch.Generator().manual_seed(0)
    parts = [torch.randn(n, 5, 7, 3, generator=gen) * 4 + 100 for n in (1, 3, 2)]
    stats = ChannelStats()
    for part in parts:
        stats.update(part)
    everything = torch.cat(parts).double()
    assert torch.allclose(stats.mean, everything.mean(dim=(0, 2, 3)), atol=1e-9)
    assert torch.allclose(stats.var, everything.var(dim=(0, 2, 3), unbiased=False), rtol=1e-7)


@pytest.mark.parametrize("name", ["yolox-nano", "yolox-tiny", "yolox-s", "yolox-m", "yolox-l", "yolox-x", "yolox-darknet53"])
def test_guesses_every_zoo_model_from_conv_shapes(name):
    """Size inference on conv layouts shaped like each zoo model's export (zero-copy dummy weights)."""
    from pathlib import Path

    from yoloxkit.weights.onnx_reader import OnnxConv, OnnxWeights

    with torch.device("meta"):
        model = build_network(name, num_classes=20)
    convs = [
        OnnxConv(i, f"Conv_{i}", np.broadcast_to(np.zeros((), np.float32), tuple(m.weight.shape)), None,
                 m.groups, tuple(m.stride), tuple(m.padding) * 2, tuple(m.dilation), frozenset({i - 1}) if i else frozenset())
        for i, m in enumerate(x for x in model.modules() if isinstance(x, nn.Conv2d))
    ]
    weights = OnnxWeights(Path(f"{name}.onnx"), convs, "images", (1, 3, None, None), {"output": (1, None, 25)})
    assert guess_model_name(weights) == name
    with pytest.raises(WeightsMismatchError, match="match no zoo model"):
        guess_model_name(OnnxWeights(weights.path, convs[:-3], "images", (1, 3, None, None), {}))


def test_onnx_convs_map_one_to_one_onto_the_traced_forward_order(onnx_weights):
    """The 113 ONNX convs line up with yolox-nano's 113 Conv2d in traced forward order."""
    pairs = pair_convs(build_network("yolox-nano"), onnx_weights)
    assert len(pairs) == len(onnx_weights.convs) == 113
    assert [onnx.index for _, _, onnx in pairs] == [conv.index for conv in onnx_weights.convs]
    # Not registration order: the head registers its stems last but runs each one first.
    assert pairs[-12][0] == "head.stems.2.conv"  # stem, 4 cls convs, cls pred, 4 reg convs, reg, obj
