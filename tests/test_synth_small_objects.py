"""The generated small-object set (yoloxkit.synth): a COCO dataset yoloxkit reads, with exact
ground truth for the pasted objects and for the up-scaled backgrounds, deterministic from its seed."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from yoloxkit.cli import main
from yoloxkit.data import load_dataset
from yoloxkit.data.check import check_dataset
from yoloxkit.errors import DatasetError, YoloxkitError
from yoloxkit.synth import cover_transform, cut_out_objects, make_small_object_set, read_source, scale_cutout

SIZE = (640, 384)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools, numpy 2

OPTIONS = dict(sizes=(SIZE,), count=2, objects_per_image=(6, 10), object_size=(12, 48), image_format="png",
               progress=False)


@pytest.fixture(scope="module")
def made(coco_mini, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    summary = make_small_object_set(coco_mini, "val2017", out, seed=0, **OPTIONS)
    content = json.loads(summary.annotation_file.read_text())
    return summary, content


def _source(coco_mini):
    return json.loads((coco_mini / "annotations" / "instances_val2017.json").read_text())


def _tight(mask):
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1 - int(xs.min()), int(ys.max()) + 1 - int(ys.min())]


def test_reads_back_as_a_coco_dataset_with_boxes_inside(made, coco_mini):
    summary, content = made
    data = load_dataset(summary.out)
    assert data.format == "coco" and data.split == "val2017" and len(data.records) == 2
    assert data.names == load_dataset(coco_mini, split="val2017").names  # the 80 categories, in order
    assert content["categories"] == _source(coco_mini)["categories"]
    for record in data.records:
        assert (record.width, record.height) == SIZE and record.path.is_file()
        assert cv2.imread(str(record.path)).shape == (SIZE[1], SIZE[0], 3)
        boxes = record.boxes
        assert len(boxes) and np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= SIZE[0]) and np.all(boxes[:, 3] <= SIZE[1])
        assert np.all(boxes[:, 2:] > boxes[:, :2])
    report = check_dataset(summary.out, progress=False)
    assert report.errors == 0 and report.warnings == 0
    kept = [a for a in content["annotations"] if not a["iscrowd"]]
    assert sum(summary.objects.values()) == len(kept) == summary.pasted + summary.background
    assert summary.pasted >= 12 and summary.objects["small"] > 0 and summary.background > 0


def test_pasted_boxes_are_the_tight_boxes_of_the_changed_pixels(made, coco_mini):
    summary, content = made
    source = {im["id"]: im for im in _source(coco_mini)["images"]}
    for image in content["images"]:
        out = cv2.imread(str(summary.out / "val2017" / image["file_name"]))
        bg = source[image["synth"]["background_id"]]
        # the documented transform, recomputed: cover, INTER_CUBIC, centre crop
        scale = max(SIZE[0] / bg["width"], SIZE[1] / bg["height"])
        rw, rh = max(SIZE[0], round(bg["width"] * scale)), max(SIZE[1], round(bg["height"] * scale))
        ox, oy = (rw - SIZE[0]) // 2, (rh - SIZE[1]) // 2
        assert image["synth"]["offset"] == [ox, oy]
        expected = cv2.resize(cv2.imread(str(coco_mini / "val2017" / bg["file_name"])), (rw, rh),
                              interpolation=cv2.INTER_CUBIC)[oy:oy + SIZE[1], ox:ox + SIZE[0]]
        pasted = np.zeros(out.shape[:2], bool)
        for ann in (a for a in content["annotations"] if a["image_id"] == image["id"] and a["synth_source"] == "pasted"):
            mask = mask_utils.decode(ann["segmentation"]).astype(bool)
            assert ann["bbox"] == _tight(mask) and ann["area"] == int(mask.sum()) and ann["iscrowd"] == 0
            assert not (pasted & mask).any()  # pasted objects never overlap
            pasted |= mask
            changed = (out[mask] != expected[mask]).any(axis=1)
            assert changed.mean() > 0.7  # the object is really there
        changed = (out != expected).any(axis=2)
        assert changed.any() and not (changed & ~pasted).any()  # nothing outside the masks is touched


def test_background_boxes_follow_the_documented_scale_and_crop(made, coco_mini):
    _, content = made
    assert cover_transform(640, 480, (640, 384)) == (1.0, 1.0, 0, 48, 640, 480)
    assert cover_transform(640, 427, (1920, 1080)) == (3.0, 3.0, 0, 100, 1920, 1281)
    assert cover_transform(480, 640, (1920, 1080)) == (4.0, 4.0, 0, 740, 1920, 2560)
    source_anns = {a["id"]: a for a in _source(coco_mini)["annotations"]}
    images = {im["id"]: im for im in content["images"]}
    found = [a for a in content["annotations"] if a["synth_source"] == "background"]
    assert found and any(im["synth"]["scale"] != [1.0, 1.0] for im in images.values())  # a real resize
    for ann in found:
        (sx, sy), (ox, oy) = images[ann["image_id"]]["synth"]["scale"], images[ann["image_id"]]["synth"]["offset"]
        x, y, w, h = source_anns[ann["source_id"]]["bbox"]
        x1, y1 = max(0, x * sx - ox), max(0, y * sy - oy)
        x2, y2 = min(SIZE[0], (x + w) * sx - ox), min(SIZE[1], (y + h) * sy - oy)
        assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-9)
        assert ann["category_id"] == source_anns[ann["source_id"]]["category_id"]


def test_same_seed_same_bytes(made, coco_mini, tmp_path):
    summary, _ = made
    again = make_small_object_set(coco_mini, "val2017", tmp_path / "again", seed=0, **OPTIONS)
    assert again.annotation_file.read_bytes() == summary.annotation_file.read_bytes()
    for path in sorted((summary.out / "val2017").iterdir()):
        assert (tmp_path / "again" / "val2017" / path.name).read_bytes() == path.read_bytes()
    other = make_small_object_set(coco_mini, "val2017", tmp_path / "other", seed=1, **OPTIONS)
    assert other.annotation_file.read_bytes() != summary.annotation_file.read_bytes()


def test_scaled_cutouts_have_the_requested_size_and_touch_only_their_mask(coco_mini):
    cutouts = cut_out_objects(read_source(coco_mini, "val2017"))
    assert cutouts and all(c.mask.sum() >= 32 * 32 for c in cutouts)
    for longest in (12, 40):
        sides = np.array([max(scale_cutout(c, longest).mask.shape) for c in cutouts])
        # thin parts (chair legs) may vanish below half a pixel, so a few come out smaller
        assert sides.max() <= longest + 1 and np.mean(np.abs(sides - longest) <= 1) > 0.9
    for cutout in cutouts[:20]:
        for longest in (12, 40):
            scaled = scale_cutout(cutout, longest)
            assert scaled is not None and scaled.patch.shape[:2] == scaled.mask.shape
            assert np.all(scaled.alpha[~scaled.mask] == 0) and np.all(scaled.alpha[scaled.mask] >= 0.5)
            assert scaled.mask[0].any() and scaled.mask[-1].any() and scaled.mask[:, 0].any() and scaled.mask[:, -1].any()
        assert np.array_equal(scale_cutout(cutout, 30, feather=False).alpha, scale_cutout(cutout, 30).mask.astype(np.float32))


def test_bad_arguments_raise_one_line_errors(coco_mini, tmp_path):
    with pytest.raises(DatasetError, match="dataset path does not exist"):
        make_small_object_set(tmp_path / "missing", "val2017", tmp_path / "out")
    with pytest.raises(DatasetError, match="split"):
        make_small_object_set(coco_mini, "test2017", tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="out .* exists and is not an empty directory"):
        make_small_object_set(coco_mini, "val2017", tmp_path / "full")
    for bad, match in [(dict(sizes=((32, 32),)), "sizes: 32x32"), (dict(sizes=()), "sizes is empty"),
                       (dict(sizes=((640, 384),), object_size=(12, 200)), "object_size: 200 px"),
                       (dict(count=(1, 2, 3)), "count must be"), (dict(objects_per_image=(5, 2)), "objects_per_image")]:
        with pytest.raises(YoloxkitError, match=match) as info:
            make_small_object_set(coco_mini, "val2017", tmp_path / "out", **bad)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--source", "{tmp}/missing", "--out", "{tmp}/out"], "error: {tmp}/missing: dataset path does not exist"),
    (["--source", "{coco}", "--out", "{tmp}/out", "--sizes", "640x384", "--object-size", "12-200"],
     "error: object_size: 200 px is too large"),
])
def test_cli_errors_exit_2_with_one_line(argv, message, coco_mini, tmp_path, capsys):
    fill = dict(tmp=tmp_path, coco=coco_mini)
    code = main(["make-small-objects", *(a.format(**fill) for a in argv), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith(message.format(**fill))


def test_cli_argument_errors_exit_2(coco_mini, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["make-small-objects", "--source", str(coco_mini), "--out", str(tmp_path / "o"), "--sizes", "640"])
    assert info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("yoloxkit make-small-objects: error: argument --sizes: expected WIDTHxHEIGHT")


def test_cli_writes_the_set_and_prints_a_summary(coco_mini, tmp_path, capsys):
    code = main(["make-small-objects", "--source", str(coco_mini), "--out", str(tmp_path / "o"), "--sizes",
                 "320x256,256x320", "--count", "1,1", "--object-size", "12-32", "--objects-per-image", "3-5",
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "wrote 2 images (1 at 320x256, 1 at 256x320)" in out and " small, " in out
    assert len(load_dataset(tmp_path / "o").records) == 2
