"""Sliced inference end to end: the Detector finds a small object whole-image inference misses,
tile boxes are the network's boxes on the crop moved by the tile origin, and the commands give
one-line errors for bad slice options."""

import json

import cv2
import numpy as np
import pytest

from yoloxkit import Detector
from yoloxkit.cli import main
from yoloxkit.infer.merge import merge_detections
from yoloxkit.infer.slicing import Slicing


@pytest.fixture(scope="module")
def detector():
    return Detector(conf=0.3, batch_size=4)


@pytest.fixture(scope="module")
def small_dog_scene(dog_jpg):
    """The demo picture shrunk to 192x144 on a 1248 x 1664 grey canvas."""
    canvas = np.full((1248, 1664, 3), 114, np.uint8)
    small = cv2.resize(cv2.imread(str(dog_jpg)), (192, 144), interpolation=cv2.INTER_AREA)
    canvas[700:844, 900:1092] = small
    return canvas


def test_slicing_finds_the_small_dog_whole_inference_misses(detector, small_dog_scene):
    whole = detector.predict_arrays([small_dog_scene])[0]
    sliced = detector.predict_arrays([small_dog_scene], slicing=Slicing(416, 416, 0.2))[0]
    found = [detector.names[c] for c in sliced.class_ids]
    assert "dog" not in [detector.names[c] for c in whole.class_ids]
    assert "dog" in found and "bicycle" in found
    dog = sliced.boxes[found.index("dog")]
    assert 900 <= dog[0] < dog[2] <= 1092 and 700 <= dog[1] < dog[3] <= 844  # image pixels, on the dog
    with_whole = detector.predict_arrays([small_dog_scene], slicing=Slicing(416, 416, 0.2, full=True))[0]
    assert "dog" in [detector.names[c] for c in with_whole.class_ids]


def test_tile_boxes_are_the_crop_boxes_moved_by_the_tile_origin(detector, dog_jpg):
    image = cv2.imread(str(dog_jpg))  # 576 x 768
    spec = Slicing(320, 416, 0.3)
    tiles = spec.tiles(*image.shape[:2])
    assert tiles[-1] == (352, 256, 768, 576)
    # By hand: each crop alone through the detector, moved by its tile origin, then merged.
    gathered = []
    for x0, y0, x1, y1 in tiles:
        found = detector.predict_arrays([np.ascontiguousarray(image[y0:y1, x0:x1])])[0]
        gathered.append((found.boxes + np.array([x0, y0, x0, y0], np.float32), found.scores, found.class_ids))
    boxes, scores, ids = (np.concatenate(parts) for parts in zip(*gathered))
    expected = merge_detections(boxes, scores, ids, spec.merge, spec.match, spec.threshold)
    sliced = detector.predict_arrays([image], slicing=spec)[0]  # tiles batched 4 at a time
    np.testing.assert_array_equal(sliced.boxes, expected[0])
    np.testing.assert_array_equal(sliced.class_ids, expected[2])
    np.testing.assert_allclose(sliced.scores, expected[1], atol=1e-6)
    assert len(sliced) > 0 and sliced.boxes[:, 2].max() > 416  # boxes beyond the first tile: moved
    # A single-tile image: the result is the crop's own
    crop = np.ascontiguousarray(image[:320, :416])
    np.testing.assert_array_equal(detector.predict_arrays([crop], slicing=spec)[0].boxes,
                                  detector.predict_arrays([crop])[0].boxes)


def test_detector_describes_and_validates_slicing(dog_jpg):
    detector = Detector(slice_size="320x256", slice_overlap=0.25, slice_full=True)
    assert detector.describe().endswith("slices 320x256 (overlap 0.25, merge nms) + full image")
    assert detector.slicing == Slicing(320, 256, 0.25, full=True)
    with pytest.raises(Exception, match=r"^slice 1000x1000 is larger than image dog.jpg \(576x768, h x w\)$"):
        Detector(slice_size=1000).predict(str(dog_jpg))
    # slicing=False runs the whole image on a slicing detector
    assert len(detector.predict(str(dog_jpg), slicing=False)[0]) == len(Detector().predict(str(dog_jpg))[0])


def _cli(capsys, *argv):
    try:
        code = main([*map(str, argv)])
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("options,message", [
    (["--slice", "1000"], "error: slice 1000x1000 is larger than image dog.jpg (576x768, h x w)"),
    (["--slice", "16"], "slice 16x16 is smaller than the model's largest stride (32 px)"),
    (["--slice", "64x"], "slice must be H or HxW in pixels"),
    (["--slice", "320", "--slice-overlap", "0"], "--slice-overlap: must be between 0 and 1 (both excluded), got 0"),
    (["--slice", "320", "--slice-overlap", "1.5"], "must be between 0 and 1 (both excluded), got 1.5"),
    (["--slice-full"], "error: --slice-full needs --slice H[xW]"),
])
def test_predict_bad_slice_options(capsys, tmp_path, dog_jpg, options, message):
    code, out, err = _cli(capsys, "predict", dog_jpg, "--no-save", "--no-progress", *options)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_predict_sliced_json(capsys, tmp_path, dog_jpg):
    json_out = tmp_path / "dets.json"
    code, out, err = _cli(capsys, "predict", dog_jpg, "--no-save", "--no-progress", "--slice", "416x512",
                          "--slice-full", "--json-out", json_out)
    assert code == 0, err
    assert "slices 416x512 (overlap 0.2, merge nms) + full image" in out.splitlines()[0]
    record = json.loads(json_out.read_text())[0]
    expected = Detector(slice_size=(416, 512), slice_full=True).predict(str(dog_jpg))[0].to_json()
    assert record["detections"] == expected["detections"]


def test_eval_checks_every_image_against_the_slice_first(capsys, coco_mini):
    code, out, err = _cli(capsys, "eval", "--data", coco_mini, "--slice", "320", "--no-progress")
    assert code == 2
    assert err.strip().startswith("error: slice 320x320 is larger than image ")
    assert "(304x640, h x w)" in err and len(err.strip().splitlines()) == 1
    assert "Average Precision" not in out


def test_predict_skips_images_smaller_than_the_slice_and_keeps_the_others(capsys, tmp_path, dog_jpg):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "dog.jpg").write_bytes(dog_jpg.read_bytes())
    cv2.imwrite(str(folder / "tiny.png"), np.full((200, 300, 3), 90, np.uint8))
    json_out = tmp_path / "dets.json"
    code, out, err = _cli(capsys, "predict", folder, "--no-save", "--no-progress", "--slice", "416",
                          "--json-out", json_out)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0] == "warning: slice 416x416 is larger than image tiny.png (200x300, h x w) (skipped)"
    assert lines[-1] == "error: 1 of 2 sources could not be read or sliced (tiny.png)"
    records = json.loads(json_out.read_text())
    assert [r["image"] for r in records] == ["dog.jpg", "tiny.png"]
    assert records[0]["detections"] and "error" in records[1]
