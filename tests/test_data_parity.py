"""The augmentation primitives against the reference implementation (pixeltable-yolox): the
same random draws must give the same affine matrix, boxes and pixels."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from yoloxkit.data.augment import AugmentConfig
from yoloxkit.data.dataset import TrainingDataset
from yoloxkit.data.mosaic import mixup, mosaic4, tile_placement
from yoloxkit.data.records import DetectionData, ImageRecord
from yoloxkit.data.transforms import augment_hsv, box_filter, random_affine, random_affine_matrix, warp_boxes

ref_aug = pytest.importorskip("yolox.data.data_augment")
ref_mosaic = pytest.importorskip("yolox.data.datasets.mosaicdetection")


class Scripted:
    """Stands in for both python's ``random`` module (reference) and a numpy Generator (ours):
    ``uniform`` returns ``low + u * (high - low)`` for the next scripted ``u``; integer draws
    return the next scripted integer."""

    def __init__(self, us, ints=()):
        self.us, self.ints = list(us), list(ints)

    def uniform(self, low=0.0, high=1.0, size=None):
        assert size is None
        return low + self.us.pop(0) * (high - low)

    def random(self):
        return self.us.pop(0)

    def randint(self, low, high):  # python: inclusive
        value = self.ints.pop(0)
        assert low <= value <= high
        return value

    def integers(self, low, high=None, size=None):  # numpy: exclusive
        value = self.ints.pop(0)
        assert low <= value < high
        return value


def _image(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_affine_matrix_boxes_and_pixels_match_reference(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    us = rng.uniform(size=6).tolist()
    monkeypatch.setattr(ref_aug, "random", Scripted(us))
    expected_matrix, _ = ref_aug.get_affine_matrix((320, 256), 10.0, 0.1, (0.1, 2.0), 2.0)
    ours = random_affine_matrix(Scripted(us), (256, 320), 10.0, 0.1, (0.1, 2.0), 2.0)
    np.testing.assert_allclose(ours, expected_matrix, rtol=1e-12, atol=1e-12)

    image = _image(rng, 512, 640)
    boxes = np.sort(rng.uniform(0, 512, (12, 4)), axis=1)[:, [0, 1, 2, 3]]
    boxes = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 0] + 60 * boxes[:, 2] / 512, boxes[:, 1] + 40], 1)
    monkeypatch.setattr(ref_aug, "random", Scripted(us))
    ref_image, ref_targets = ref_aug.random_affine(image.copy(), np.hstack([boxes, np.ones((12, 1))]),
                                                   target_size=(320, 256), degrees=10.0, translate=0.1,
                                                   scales=(0.1, 2.0), shear=2.0)
    our_image, our_boxes = random_affine(image, boxes, ours, (256, 320))
    np.testing.assert_array_equal(our_image, ref_image)
    np.testing.assert_allclose(our_boxes, ref_targets[:, :4], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(warp_boxes(boxes, ours, (256, 320)), our_boxes)


@pytest.mark.parametrize("centre, us", [((330, 250), [0.3, 0.8, 0.5, 0.5, 0.2, 0.9]),
                                        ((150, 390), [0.9, 0.05, 0.1, 0.7, 0.5, 0.5]),
                                        ((470, 140), [0.5, 0.55, 0.5, 0.5, 0.0, 1.0])])
def test_mosaic_matches_full_canvas_reference(monkeypatch, centre, us):
    """Our mosaic fills only the visible part of the canvas; the result must equal the
    reference's full 2x canvas warped by the same matrix."""
    out_h, out_w = 256, 320
    rng = np.random.default_rng(sum(centre))
    sizes = [(256, 190), (200, 320), (256, 256), (120, 320)]
    images = [_image(rng, h, w) for h, w in sizes]
    boxes = [np.array([[5.0, 7.0, w - 9.0, h - 3.0], [w / 3, h / 4, w / 2, h / 2]]) for h, w in sizes]
    canvas = np.full((2 * out_h, 2 * out_w, 3), 114, dtype=np.uint8)
    labels = []
    for k, ((h, w), image) in enumerate(zip(sizes, images)):
        (x1, y1, x2, y2), (sx1, sy1, sx2, sy2) = ref_mosaic.get_mosaic_coordinate(
            canvas, k, centre[0], centre[1], w, h, out_h, out_w)
        assert ((x1, y1, x2, y2), (sx1, sy1, sx2, sy2)) == tile_placement(k, centre, (h, w), (2 * out_h, 2 * out_w))
        canvas[y1:y2, x1:x2] = image[sy1:sy2, sx1:sx2]
        labels.append(boxes[k] + [x1 - sx1, y1 - sy1, x1 - sx1, y1 - sy1])
    labels = np.concatenate(labels)
    labels[:, 0::2] = labels[:, 0::2].clip(0, 2 * out_w)
    labels[:, 1::2] = labels[:, 1::2].clip(0, 2 * out_h)
    monkeypatch.setattr(ref_aug, "random", Scripted(us))
    ref_image, ref_labels = ref_aug.random_affine(canvas, np.hstack([labels, np.zeros((len(labels), 1))]),
                                                  target_size=(out_w, out_h), degrees=10.0, translate=0.1,
                                                  scales=(0.1, 2.0), shear=2.0)
    matrix = random_affine_matrix(Scripted(us), (out_h, out_w))
    loads = []
    tiles = [((h, w), (lambda k=k: loads.append(k) or images[k]), boxes[k]) for k, (h, w) in enumerate(sizes)]
    image, our_boxes, owners = mosaic4(tiles, centre, matrix, (out_h, out_w))
    np.testing.assert_allclose(our_boxes, ref_labels[:, :4], atol=1e-9)
    assert owners == [0, 0, 1, 1, 2, 2, 3, 3]
    # bilinear sampling uses fixed-point source coordinates that depend on the matrix offset,
    # so a few pixels may differ by a grey level or so
    difference = np.abs(image.astype(np.int16) - ref_image.astype(np.int16))
    assert difference.mean() < 0.05 and np.percentile(difference, 99.9) <= 8, (difference.mean(), difference.max())


def test_mosaic_skips_tiles_that_are_not_visible():
    matrix = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # zoom on the canvas's top-left quarter
    sizes = [(100, 100)] * 4
    loads = []
    tiles = [(s, (lambda k=k: loads.append(k) or np.zeros((100, 100, 3), np.uint8)), np.array([[10.0, 10, 20, 20]]))
             for k, s in enumerate(sizes)]
    _, boxes, _ = mosaic4(tiles, (150, 150), matrix, (100, 100))
    assert loads == [0]  # the other three tiles are outside what the output shows
    assert len(boxes) == 4  # but their boxes are still transformed (and come out clipped)


@pytest.mark.parametrize("seed", [3, 4])
def test_hsv_matches_reference(seed):
    image = np.random.default_rng(seed).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    np.random.seed(seed)
    gains = (np.random.uniform(-1, 1, 3) * [5, 30, 30] * np.random.randint(0, 2, 3)).astype(np.int16)
    np.random.seed(seed)
    expected = image.copy()
    ref_aug.augment_hsv(expected)
    np.testing.assert_array_equal(augment_hsv(image, gains), expected)
    np.testing.assert_array_equal(augment_hsv(image, np.array([-4, 25, -17], np.int16)),
                                  _ref_hsv_fixed(image, [-4, 25, -17]))


def _ref_hsv_fixed(image, gains):
    original = ref_aug.np.random
    out = image.copy()
    try:
        ref_aug.np.random = _ref_hsv_fixed_random(gains)
        ref_aug.augment_hsv(out)
    finally:
        ref_aug.np.random = original
    return out


class _FakeDataset:
    def __init__(self, image, labels):
        self.image, self.labels, self.input_dim = image, labels, (256, 320)

    def __len__(self):
        return 1

    def load_anno(self, index):
        return self.labels

    def pull_item(self, index):
        return self.image, self.labels.copy(), self.image.shape[:2], np.array([index])


@pytest.mark.parametrize("jitter_u, flip_u, offsets", [(0.9, 0.8, [7, 21]), (0.2, 0.1, []), (0.75, 0.3, [3, 40])])
def test_mixup_matches_reference(monkeypatch, jitter_u, flip_u, offsets):
    rng = np.random.default_rng(7)
    other = _image(rng, 180, 320)
    other_boxes = np.array([[10.0, 20, 100, 150], [200, 5, 318, 60]])
    base = _image(rng, 256, 320)
    reference = ref_mosaic.MosaicDetection(_FakeDataset(other, np.hstack([other_boxes, [[1], [2]]])), (256, 320),
                                           mosaic=True, preproc=None)
    jitter = 0.5 + jitter_u
    scaled_h = int(256 * jitter)
    scaled_w = int(320 * jitter)
    ints = [o for o, big in zip(offsets, (scaled_h > 256, scaled_w > 320)) if big]
    monkeypatch.setattr(ref_mosaic, "random", Scripted([jitter_u, flip_u], [0] + ints))
    ref_image, ref_labels = reference.mixup(base.copy(), np.zeros((0, 5)), (256, 320))
    image, boxes = mixup(base, other, other_boxes, Scripted([jitter_u, flip_u], ints))
    np.testing.assert_array_equal(image, ref_image)
    np.testing.assert_allclose(boxes, ref_labels[:, :4], atol=1e-9)


def test_box_filter_is_the_reference_rule():
    boxes = np.array([[0, 0, 1, 5], [0, 0, 1.01, 1.01], [3, 3, 3, 9], [0, 0, 40, 2], [0, 0, 2, 0.5]])
    cxcywh = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                       boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
    reference = np.minimum(cxcywh[:, 2], cxcywh[:, 3]) > 1
    np.testing.assert_array_equal(box_filter(boxes), reference)
    assert box_filter(boxes, min_area=50).tolist() == [False, False, False, True, False]
    assert box_filter(boxes, max_aspect=10).tolist() == [False, True, False, False, False]


class _FixedGenerator:
    """A numpy-Generator stand-in for our transform: every probability draw is 0 (so each
    switched-on augmentation runs) and the HSV draw gives ``gains``."""

    def __init__(self, gains):
        self.gains = np.asarray(gains, dtype=np.float64)

    def uniform(self, low=0.0, high=1.0, size=None):
        return 0.0 if size is None else self.gains / [5, 30, 30]

    def integers(self, low, high=None, size=None):
        return np.ones(size, dtype=np.int64)


def _our_transform(image, boxes, classes, size, hsv_prob, flip_prob, rng):
    """Our TrainTransform step (``TrainingDataset._finish``) on an image already fitted to ``size``."""
    record = ImageRecord(Path("unused.png"), image.shape[1], image.shape[0], np.zeros((0, 4), np.float32),
                         np.zeros(0, np.int64))
    data = DetectionData(["a", "b", "c"], [record], "coco", "train", Path("."))
    augment = AugmentConfig(mosaic_prob=0.0, enable_mixup=False, hsv_prob=hsv_prob, flip_prob=flip_prob)
    dataset = TrainingDataset(data, size, augment, max_labels=50)
    return dataset._finish(image.copy(), np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(classes), rng)


def _reference_transform(image, boxes, classes, size, hsv_prob, flip_prob):
    labels = np.hstack([np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(classes, np.float64).reshape(-1, 1)])
    out, targets = ref_aug.TrainTransform(max_labels=50, flip_prob=flip_prob, hsv_prob=hsv_prob)(image.copy(), labels, size)
    return out.transpose(1, 2, 0).astype(np.uint8), targets


# (boxes, classes): no boxes; all filtered, zero-size ones (clipped away at a Mosaic border)
# included; some kept
TRANSFORM_CASES = {
    "empty": (np.zeros((0, 4)), []),
    "all filtered": ([[10, 10, 11, 40], [0, 30, 0, 60], [50, 20, 80, 20.5], [60, 0, 60, 0]], [0, 1, 2, 1]),
    "some kept": ([[10, 10, 50, 40], [60, 30, 61, 60], [70, 5, 127, 90], [0, 30, 0, 60]], [2, 0, 1, 1]),
}


@pytest.mark.parametrize("case", sorted(TRANSFORM_CASES))
@pytest.mark.parametrize("hsv_prob, flip_prob, shape", [(0.0, 0.0, (96, 128)), (0.0, 1.0, (96, 128)),
                                                        (1.0, 1.0, (128, 128)), (1.0, 0.0, (128, 70))])
def test_train_transform_matches_reference(case, hsv_prob, flip_prob, shape):
    """Our per-sample transform gives the reference TrainTransform's image and targets, also for
    samples without boxes (only padded) and samples whose boxes are all filtered (the original
    image with all its boxes, zero-size ones included)."""
    boxes, classes = TRANSFORM_CASES[case]
    image = np.random.default_rng(len(case)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    gains = [-4, 25, -17]
    original = ref_aug.np.random
    try:  # the reference draws its HSV gains from numpy's global functions: fix them
        ref_aug.np.random = _ref_hsv_fixed_random(gains)
        random.seed(0)
        expected_image, expected_targets = _reference_transform(image, boxes, classes, (128, 128), hsv_prob, flip_prob)
    finally:
        ref_aug.np.random = original
    ours_image, ours_targets = _our_transform(image, boxes, classes, (128, 128), hsv_prob, flip_prob,
                                              _FixedGenerator(gains))
    np.testing.assert_array_equal(ours_image, expected_image)
    np.testing.assert_allclose(ours_targets, expected_targets, atol=1e-5)
    if case == "empty" or case == "all filtered":
        untouched = np.full((128, 128, 3), 114, np.uint8)
        untouched[: shape[0], : shape[1]] = image
        np.testing.assert_array_equal(ours_image, untouched)
    if case == "all filtered":
        sides = ours_targets[:4, 3:].min(1)
        assert ours_targets[:4, 0].tolist() == classes and sides.max() <= 1 and (sides == 0).sum() == 2
        assert not ours_targets[4:].any()


def _ref_hsv_fixed_random(gains):
    class Fixed:
        @staticmethod
        def uniform(low, high, n):
            return np.asarray(gains, dtype=np.float64) / [5, 30, 30]

        @staticmethod
        def randint(low, high, n):
            return np.ones(n, dtype=np.int64)

    return Fixed
