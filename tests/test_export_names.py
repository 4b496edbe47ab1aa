"""Exported ONNX files keep the model's class names, and yoloxkit reads them back."""

import numpy as np
import onnx
import pytest

import yoloxkit
from yoloxkit.cli import main
from yoloxkit.weights import describe_weights, load_weights, save_checkpoint

NAMES = ["apple", "pear", "plum"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("names")
    model = yoloxkit.build_model("yolox-nano", num_classes=len(NAMES))
    ckpt = save_checkpoint(tmp / "fruit.pth", model, NAMES, "yolox-nano")
    out = tmp / "fruit.onnx"
    assert main(["export", "--model", "yolox-nano", "--weights", str(ckpt), "--format", "onnx",
                 "--size", "128", "--out", str(out)]) == 0
    return out


def test_names_are_in_the_onnx_metadata(exported):
    props = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert props["model_name"] == "yolox-nano"
    assert props["names"] == '["apple", "pear", "plum"]'


def test_detector_and_load_weights_read_the_names_back(exported):
    assert describe_weights(exported).names == NAMES
    det = yoloxkit.Detector(weights=str(exported), backend="onnxruntime")
    assert det.names == NAMES
    result = det(np.full((100, 120, 3), 114, np.uint8))[0]
    assert result.names == NAMES
    model = yoloxkit.build_model("yolox-nano", num_classes=len(NAMES))
    assert load_weights(model, exported) == NAMES


def test_official_onnx_without_metadata_still_gets_coco_names(nano_onnx):
    info = describe_weights(nano_onnx)
    assert info.names is None
    det = yoloxkit.Detector("yolox-nano", weights=str(nano_onnx), backend="onnxruntime")
    assert det.names[16] == "dog"
