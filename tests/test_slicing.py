"""Sliced inference, the pure parts: the tile grid, the settings, cut boxes and the merge."""

import itertools

import numpy as np
import pytest

from yoloxkit.errors import InferenceError
from yoloxkit.infer.merge import greedy_groups, merge_detections, pairwise_overlap
from yoloxkit.infer.sliced import crop_plan, detect_sliced, uncut
from yoloxkit.infer.slicing import MIN_SLICE, Slicing, parse_slice, tile_grid, tile_starts


@pytest.mark.parametrize("height,width,tile_h,tile_w,overlap", [
    (1080, 1920, 416, 416, 0.2), (2160, 3840, 640, 640, 0.25), (480, 640, 300, 300, 0.2),
    (416, 416, 416, 416, 0.2), (500, 333, 320, 320, 0.5), (1000, 700, 123, 77, 0.1),
])
def test_tiles_cover_the_image_with_full_size_tiles(height, width, tile_h, tile_w, overlap):
    tiles = tile_grid(height, width, tile_h, tile_w, overlap)
    covered = np.zeros((height, width), dtype=np.int32)
    for x0, y0, x1, y1 in tiles:
        assert (x1 - x0, y1 - y0) == (tile_w, tile_h)
        assert 0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    starts = tile_starts(width, tile_w, overlap)
    assert starts[0] == 0 and starts[-1] == width - tile_w
    # neighbours share at least the requested overlap (the last one more, as it is moved back)
    assert all(b - a <= round(tile_w * (1 - overlap)) for a, b in zip(starts, starts[1:]))
    assert len(tiles) == len(starts) * len(tile_starts(height, tile_h, overlap))


def test_tile_grid_example():
    # 1920 wide, 416 tiles, step round(416 * 0.8) = 333: 0, 333, 666, 999, 1332, then 1504 (ends at 1920)
    assert tile_starts(1920, 416, 0.2) == [0, 333, 666, 999, 1332, 1504]
    assert tile_starts(1080, 416, 0.2) == [0, 333, 664]


def test_slice_larger_than_the_image_names_the_image():
    with pytest.raises(InferenceError, match=r"^slice 640x640 is larger than image a\.jpg \(480x640, h x w\)$"):
        tile_grid(480, 640, 640, 640, 0.2, image="a.jpg")
    with pytest.raises(InferenceError, match="larger than"):
        Slicing(320, 700).tiles(480, 640)


@pytest.mark.parametrize("value,expected", [
    ("640", (640, 640)), ("640x480", (640, 480)), ("640X480", (640, 480)), (512, (512, 512)),
    ((320, 256), (320, 256)), ([32, 33], (32, 33)),
])
def test_parse_slice(value, expected):
    assert parse_slice(value) == expected


@pytest.mark.parametrize("value", ["abc", "640x", "1x2x3", "", True, 64.5, (1.5, 2), None])
def test_parse_slice_rejects_bad_text(value):
    with pytest.raises(InferenceError, match=r"^slice must be H or HxW in pixels"):
        parse_slice(value)


@pytest.mark.parametrize("value", ["16", "640x16", 31, (31, 640)])
def test_slice_smaller_than_the_stride(value):
    with pytest.raises(InferenceError, match=rf"smaller than the model's largest stride \({MIN_SLICE} px\)$"):
        parse_slice(value)


@pytest.mark.parametrize("overlap", [0, 0.0, 1, 1.0, 1.5, -0.1, "0.2", True])
def test_overlap_must_be_inside_zero_one(overlap):
    with pytest.raises(InferenceError, match=r"^slice_overlap must be between 0 and 1"):
        Slicing(320, 320, overlap=overlap)


def test_slicing_options():
    assert Slicing.from_options(None) is None
    spec = Slicing.from_options("320x256", 0.3, True)
    assert (spec.height, spec.width, spec.overlap, spec.full) == (320, 256, 0.3, True)
    assert Slicing.from_options(spec) is spec
    with pytest.raises(InferenceError, match="merge must be one of nms, nmm"):
        Slicing(320, 320, merge="wbf")
    with pytest.raises(InferenceError, match="match must be one of"):
        Slicing(320, 320, match="giou")


def test_crop_plan_lists_tiles_then_the_whole_image():
    plan = crop_plan([(480, 640), (300, 300)], Slicing(300, 300, 0.2, full=True))
    first = [tile for index, tile in plan if index == 0]
    assert first[-1] == (0, 0, 640, 480) and len(first) == 2 * 3 + 1
    assert [tile for index, tile in plan if index == 1] == [(0, 0, 300, 300), (0, 0, 300, 300)]


def test_uncut_drops_boxes_at_inner_borders_only():
    tile = (100, 0, 400, 300)  # left edge inside the image, top and right... right inside too
    boxes = np.array([
        [150, 10, 250, 100],   # clear of every border
        [100, 50, 180, 90],    # on the inner left edge: cut
        [300, 0, 390, 40],     # on the top edge, which is the image's: kept
        [320, 40, 400, 80],    # on the inner right edge: cut
        [200, 200, 260, 300],  # on the bottom edge, which is the image's (height 300): kept
    ], dtype=np.float32)
    assert uncut(boxes, tile, (300, 800)).tolist() == [True, False, True, False, True]


def test_pairwise_overlap():
    box = np.array([0, 0, 10, 10], np.float32)
    others = np.array([[0, 0, 10, 5], [5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(pairwise_overlap(box, others, "ios"), [1.0, 0.25, 0.0, 0.0])
    np.testing.assert_allclose(pairwise_overlap(box, others, "iou"), [0.5, 25 / 175, 0.0, 0.0])


def _brute_force_groups(boxes, scores, metric, threshold):
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    owner = {}
    for i in order:
        if i in owner:
            continue
        owner[i] = i
        for j in order:
            if j not in owner and pairwise_overlap(boxes[i], boxes[j:j + 1], metric)[0] > threshold:
                owner[j] = i
    return [owner[i] for i in range(len(boxes))]


@pytest.mark.parametrize("seed,metric", list(itertools.product(range(6), ("iou", "ios"))))
def test_greedy_groups_equal_the_definition(seed, metric):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (30, 2))], axis=1).astype(np.float32)
    scores = rng.choice([0.3, 0.5, 0.7, 0.9], 30).astype(np.float32)  # ties broken by index
    assert greedy_groups(boxes, scores, metric, 0.4).tolist() == _brute_force_groups(boxes, scores, metric, 0.4)


def test_merge_keeps_one_box_for_an_object_cut_by_a_tile_border():
    whole = [100, 100, 200, 180]
    cut = [150, 100, 200, 180]  # the part of it right of a border at x = 150
    other_class = [150, 100, 200, 180]
    boxes = np.array([cut, whole, other_class], np.float32)
    scores = np.array([0.9, 0.8, 0.6], np.float32)
    ids = np.array([1, 1, 2])
    merged, kept_scores, kept_ids = merge_detections(boxes, scores, ids, "nmm", "ios", 0.5)
    assert merged.tolist() == [whole, other_class] and kept_ids.tolist() == [1, 2]
    np.testing.assert_allclose(kept_scores, [0.9, 0.6])
    # NMS keeps the best box as it is; with IoU the cut box (IoU 0.5) is not above 0.5
    assert merge_detections(boxes, scores, ids, "nms", "ios", 0.5)[0].tolist() == [cut, other_class]
    assert len(merge_detections(boxes, scores, ids, "nms", "iou", 0.5)[0]) == 3
    empty = merge_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    assert [len(a) for a in empty] == [0, 0, 0]


def _square_finder(crops):
    """A stand-in detector: the box of the white pixels of each crop, in crop pixels (class 0)."""
    outputs = []
    for crop in crops:
        ys, xs = np.nonzero(crop[..., 0] == 255)
        if len(xs) == 0:
            outputs.append((np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)))
            continue
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        outputs.append((box, np.array([0.9 if crop.shape[0] < 600 else 0.5], np.float32), np.zeros(1, np.int64)))
    return outputs


@pytest.mark.parametrize("full", [False, True])
def test_tile_boxes_map_back_to_image_pixels_exactly(full):
    image = np.zeros((600, 900, 3), np.uint8)
    image[37:81, 411:463] = 255  # whole inside the tile at x 300..700, y 0..300
    spec = Slicing(300, 400, overlap=0.25, full=full, merge="nmm", match="ios")
    calls = []

    def detect(crops):
        calls.append(len(crops))
        return _square_finder(crops)

    (boxes, scores, ids), = detect_sliced([image], spec, detect, batch_size=4)
    assert boxes.tolist() == [[411, 37, 463, 81]]  # exact image pixels, one box
    assert max(calls) <= 4 and sum(calls) == len(crop_plan([(600, 900)], spec))


def test_square_cut_by_tile_borders_is_one_box():
    image = np.zeros((600, 900, 3), np.uint8)
    tiles = tile_grid(600, 900, 300, 400, 0.25)
    border = sorted({t[0] for t in tiles})[1]  # x = 300: the second column's left edge
    image[100:160, border - 30:border + 30] = 255  # whole in the first column's tile, cut in the second
    for full in (False, True):
        merged = detect_sliced([image], Slicing(300, 400, 0.25, full=full, merge="nmm", match="ios"),
                               _square_finder, batch_size=8)[0]
        assert merged[0].tolist() == [[border - 30, 100, border + 30, 160]]
