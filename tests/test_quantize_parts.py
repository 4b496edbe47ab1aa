"""The parts of INT8 export as pure functions: calibration image choice, the layer groups kept in
float, reading dequantised weights, and the default calibration images a checkpoint records."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from yoloxkit.cli import main
from yoloxkit.errors import ExportError
from yoloxkit.quantize import calibration_files, calibration_inputs, recorded_training_images
from yoloxkit.quantize.layers import nodes_in_groups
from yoloxkit.weights import bundled_weights_path, read_checkpoint
from yoloxkit.weights.onnx_reader import dequantize_constant


def test_calibration_files_are_spread_over_the_sorted_folder(tmp_path):
    for i in range(10):
        (tmp_path / f"{i:02d}.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    picked = calibration_files(tmp_path, 4)
    assert [p.name for p in picked] == ["00.jpg", "03.jpg", "06.jpg", "09.jpg"]
    assert len(calibration_files(tmp_path, 64)) == 10  # all of them when there are fewer
    with pytest.raises(ExportError, match="invalid --calib-count 0"):
        calibration_files(tmp_path, 0)


def test_calibration_inputs_are_the_letterboxed_network_input_and_skip_unreadable_files(dog_jpg, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    images, skipped = calibration_inputs([dog_jpg, broken], (128, 128))  # 768x576: rows 96-127 padded
    assert images.shape == (1, 3, 128, 128) and images.dtype == np.float32 and skipped == [broken]
    assert images.max() > 100 and images[0, :, -1, -1].tolist() == [114.0, 114.0, 114.0]  # BGR 0-255, padded
    with pytest.raises(ExportError, match="no readable calibration image"):
        calibration_inputs([broken], (64, 64))


def test_layer_groups_match_exported_node_names():
    names = ["/backbone/backbone/stem/conv/conv/Conv", "/backbone/backbone/dark2/dark2.0/dconv/conv/Conv",
             "/backbone/backbone/dark3/dark3.0/conv/Conv", "/head/stems.0/conv/Conv", "/head/cls_preds.0/Conv",
             "/head/reg_preds.2/Conv", "/head/obj_preds.1/Conv", "/head/cls_convs.0/cls_convs.0.0/conv/Conv",
             "/head/Concat_6", "/head/Sigmoid", "/Reshape"]
    assert nodes_in_groups(names, ["stem", "dark2"]) == names[:2]
    assert nodes_in_groups(names, ["preds"]) == names[4:7]
    assert nodes_in_groups(names, ["tail"]) == names[8:]
    with pytest.raises(ExportError, match="unknown layer group 'neck'"):
        nodes_in_groups(names, ["neck"])


def test_dequantize_constant_per_channel_and_per_tensor():
    values = np.array([[[[-128]], [[127]]], [[[2]], [[-2]]]], dtype=np.int8)  # [2, 2, 1, 1]
    tensors = {"w": values, "s": np.array([0.5, 0.25], np.float32), "z": np.zeros(2, np.int8),
               "s1": np.array(0.1, np.float32)}
    node = helper.make_node("DequantizeLinear", ["w", "s", "z"], ["out"], axis=0)
    expected = values.astype(np.float32) * np.array([0.5, 0.25], np.float32).reshape(2, 1, 1, 1)
    np.testing.assert_array_equal(dequantize_constant(node, tensors), expected)
    per_tensor = helper.make_node("DequantizeLinear", ["w", "s1"], ["out"])
    np.testing.assert_allclose(dequantize_constant(per_tensor, tensors), values.astype(np.float32) * 0.1)
    bias = helper.make_node("DequantizeLinear", ["b", "s"], ["out"], axis=0)
    got = dequantize_constant(bias, {"b": np.array([4, -8], np.int32), "s": tensors["s"]})
    np.testing.assert_array_equal(got, [2.0, -2.0])
    assert numpy_helper.from_array(got).data_type == onnx.TensorProto.FLOAT


def _checkpoint_with_training_data(tmp_path, data, split="train2017"):
    ckpt = read_checkpoint(bundled_weights_path())
    ckpt["train_data"] = {"data": str(data), "split": split}
    path = tmp_path / "trained.pth"
    torch.save(ckpt, path)
    return path


def test_a_checkpoint_records_its_training_images(coco_mini, tmp_path):
    path = _checkpoint_with_training_data(tmp_path, coco_mini)
    files = recorded_training_images(path)
    assert files is not None and len(files) == 80 and all(f.parent.name == "train2017" for f in files)
    (tmp_path / "other").mkdir()
    gone = _checkpoint_with_training_data(tmp_path / "other", tmp_path / "moved-away")
    assert recorded_training_images(gone) is None
    assert recorded_training_images(bundled_weights_path()) is None  # no training data recorded


def test_export_int8_calibrates_on_the_recorded_training_images_by_default(coco_mini, tmp_path, capsys):
    path = _checkpoint_with_training_data(tmp_path, coco_mini)
    out = tmp_path / "nano-int8.onnx"
    assert main(["export", "--weights", str(path), "--size", "64", "--int8", "--calib-count", "4",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "calibration images: the 80 training images" in text and "calibrating on 4 images" in text
    assert out.is_file() and "exported int8 onnx" in text and "max abs diff of the scores" in text


def test_benchmark_int8_defaults_to_the_default_model_like_the_detector(capsys):
    assert main(["benchmark", "--size", "64", "--backend", "onnxruntime", "--int8", "--iters", "1",
                 "--warmup", "0"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| yolox-nano")]
    assert [row.split("|")[4].strip() for row in rows] == ["onnxruntime", "onnxruntime int8"]
