"""Boxes stay on their objects through every transform; seeded determinism; collate padding."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data_synth import COLOURS, make_coco
from yoloxkit.data import load_dataset
from yoloxkit.data.augment import AugmentConfig
from yoloxkit.data.dataset import TrainingDataset
from yoloxkit.data.loader import build_loader, collate, multiscale_sizes
from yoloxkit.data.records import DetectionData, ImageRecord
from yoloxkit.data.mosaic import mixup
from yoloxkit.data.transforms import (
    augment_hsv,
    hflip,
    random_affine,
    random_affine_matrix,
    random_hsv_gains,
)
from yoloxkit.engine.config import training_recipe
from yoloxkit.imaging import letterbox
from yoloxkit.imaging.letterbox import pad_to

NAMES = sorted(COLOURS)  # bird (blue), cat (red), dog (green)


def _colour_mask(image, colour, tol=40):
    return np.all(np.abs(image.astype(np.int16) - np.array(colour, np.int16)) < tol, axis=2)


def _mask_bbox(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def _scene(width=160, height=120):
    image = np.full((height, width, 3), 90, dtype=np.uint8)
    boxes = np.array([[10, 15, 60, 50], [80, 30, 150, 110], [20, 70, 50, 115]], dtype=np.float64)
    classes = [0, 1, 2]
    for (x1, y1, x2, y2), c in zip(boxes.astype(int), classes):
        image[y1:y2, x1:x2] = COLOURS[NAMES[c]]
    return image, boxes, classes


def _assert_boxes_on_rectangles(image, boxes, classes, tol=2.0):
    for box, c in zip(boxes, classes):
        mask = _colour_mask(image, COLOURS[NAMES[c]])
        assert mask.any(), f"class {c} vanished"
        np.testing.assert_allclose(_mask_bbox(mask), box, atol=tol)


def test_letterbox_and_flip_keep_boxes_on_rectangles():
    image, boxes, classes = _scene()
    boxed, ratio = letterbox(image, (96, 96))
    assert boxed.shape == (96, 96, 3) and ratio == pytest.approx(0.6)
    assert np.all(boxed[73:, :] == 114)  # padding at the bottom
    _assert_boxes_on_rectangles(boxed, boxes * ratio, classes, tol=1.5)
    flipped, flipped_boxes = hflip(image, boxes)
    _assert_boxes_on_rectangles(flipped, flipped_boxes, classes, tol=0.5)


@pytest.mark.parametrize("seed", range(4))
def test_random_affine_keeps_boxes_on_rectangles(seed):
    image, boxes, classes = _scene()
    rng = np.random.default_rng(seed)
    matrix = random_affine_matrix(rng, (120, 160), degrees=10, translate=0.05, scale=(0.8, 1.0), shear=2.0)
    warped, new_boxes = random_affine(image, boxes, matrix, (120, 160))
    _assert_boxes_on_rectangles(warped, new_boxes, classes, tol=2.0)


def test_hsv_changes_colours_only():
    image, _, _ = _scene()
    gains = np.array([3, -20, 25], np.int16)
    out = augment_hsv(image, gains)
    assert out.shape == image.shape and not np.array_equal(out, image)
    assert np.array_equal(augment_hsv(image, np.zeros(3, np.int16)), image)
    draws = np.array([random_hsv_gains(np.random.default_rng(s)) for s in range(200)])
    assert np.abs(draws).max(0).tolist() <= [5, 30, 30] and (draws == 0).any(0).all()


def test_mixup_boxes_cover_the_blended_rectangles():
    other, boxes, classes = _scene(200, 150)
    base = np.zeros((128, 160, 3), np.uint8)
    blended, new_boxes = mixup(base, other, boxes, np.random.default_rng(5), (0.9, 1.1))
    half = {name: tuple(v // 2 for v in colour) for name, colour in COLOURS.items()}
    for box, c in zip(new_boxes, classes):
        if box[2] - box[0] < 3 or box[3] - box[1] < 3:
            continue  # cropped away
        mask = _colour_mask(blended, half[NAMES[c]], tol=12)
        np.testing.assert_allclose(_mask_bbox(mask), box, atol=2.0)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Six 200x150 images, each with one rectangle per class at different places."""
    rng = np.random.default_rng(0)
    images = {}
    for k in range(6):
        objects = []
        for c in range(3):  # class c lives in its own column, away from the borders: no overlaps
            x1, y1 = 66 * c + rng.integers(8, 20), rng.integers(8, 60)
            objects.append((c, int(x1), int(y1), int(x1 + rng.integers(25, 40)), int(y1 + rng.integers(25, 80))))
        images[f"{k}.png"] = objects
    root = make_coco(tmp_path_factory.mktemp("scenes"), "train", images, NAMES, size=(200, 150))
    return load_dataset(root, "train")


def test_full_pipeline_boxes_cover_their_rectangles(scenes):
    """Mosaic + affine + flip: each box is the tight box around its rectangle, and no pixel of
    a class colour lies outside the boxes of that class (beyond the few of boxes too thin to keep)."""
    augment = AugmentConfig(mosaic_prob=1.0, mosaic_scale=(0.5, 1.5), enable_mixup=False, hsv_prob=0.0)
    dataset = TrainingDataset(scenes, 192, augment, seed=1)
    checked = 0
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            image, targets = dataset[index]
            rows = targets[targets[:, 3] > 0]
            for c in range(3):
                mask = _colour_mask(image, COLOURS[NAMES[c]], tol=30)
                inside = np.zeros_like(mask)
                for _, cx, cy, w, h in rows[rows[:, 0] == c]:
                    box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                    x1, y1 = (max(int(np.floor(v)) - 2, 0) for v in box[:2])
                    x2, y2 = (int(np.ceil(v)) + 2 for v in box[2:])
                    inside[y1:y2, x1:x2] = True
                    if w > 6 and h > 6:
                        local = np.zeros_like(mask)
                        local[y1:y2, x1:x2] = mask[y1:y2, x1:x2]
                        found = _mask_bbox(local)
                        if box.min() > 0.5 and box[2] < 191.5 and box[3] < 191.5:
                            np.testing.assert_allclose(found, box, atol=1.5, err_msg=f"{epoch} {index} {c}")
                        else:
                            # clipped by the output border: the box around the rotated corners
                            # (official semantics) may reach past the visible part
                            assert np.all(found[:2] >= box[:2] - 1.5) and np.all(found[2:] <= box[2:] + 1.5)
                        checked += 1
                assert (mask & ~inside).sum() <= 2 * max(image.shape), (index, c, (mask & ~inside).sum())
    assert checked >= 30


def test_seeded_determinism(scenes):
    augment = training_recipe("yolox-s").augment(mosaic_scale=(0.5, 1.5))
    first = TrainingDataset(scenes, 128, augment, seed=3)
    second = TrainingDataset(scenes, 128, augment, seed=3)
    for index in (0, 4):
        a, b = first[index], second[index]
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    second.set_epoch(1)
    assert not np.array_equal(first[0][0], second[0][0])
    assert not np.array_equal(first[0][0], TrainingDataset(scenes, 128, augment, seed=4)[0][0])


def test_loader_batches_do_not_depend_on_worker_count(scenes):
    dataset = TrainingDataset(scenes, 96, training_recipe("yolox-nano").augment(), seed=0)

    def batches(workers):
        loader, sampler = build_loader(dataset, batch_size=3, workers=workers, seed=5)
        sampler.set_epoch(2)
        dataset.set_epoch(2)
        return [b for b in loader]

    single, multi = batches(0), batches(2)
    assert len(single) == 2
    for (ia, ta), (ib, tb) in zip(single, multi):
        assert torch.equal(ia, ib) and torch.equal(ta, tb)


def test_close_mosaic_and_no_aug(scenes):
    dataset = TrainingDataset(scenes, 200, training_recipe("yolox-s").augment(), seed=0)
    assert dataset.max_labels == 120
    dataset.close_mosaic()
    image, targets = dataset[0]
    assert image.shape == (200, 200, 3)
    assert (targets[:, 3] > 0).sum() == 3  # one image's three objects, no mosaic
    scheduled = TrainingDataset(scenes, 200, training_recipe("yolox-s").augment(), seed=0, close_mosaic_at=3)
    scheduled.set_epoch(2)
    assert scheduled.mosaic_enabled
    scheduled.set_epoch(3)
    assert not scheduled.mosaic_enabled and (scheduled[0][1][:, 3] > 0).sum() == 3
    plain = TrainingDataset(scenes, 200, AugmentConfig.off(), seed=0)
    assert plain.max_labels == 50
    image, targets = plain[0]
    record = scenes.records[0]
    expected = np.stack([(record.boxes[:, 0] + record.boxes[:, 2]) / 2, (record.boxes[:, 1] + record.boxes[:, 3]) / 2,
                         record.boxes[:, 2] - record.boxes[:, 0], record.boxes[:, 3] - record.boxes[:, 1]], 1)
    np.testing.assert_allclose(targets[:3, 1:], expected, rtol=1e-6)  # ratio 1: 200x150 fits 200x200
    assert np.all(image[150:] == 114)


def test_collate_pads_and_converts():
    image_a = np.zeros((4, 6, 3), np.uint8)
    image_a[..., 0], image_a[..., 1], image_a[..., 2] = 10, 20, 30
    batch = [(image_a, np.array([[1, 2, 2, 3, 3]], np.float32)),
             (image_a.copy(), np.zeros((0, 5), np.float32)),
             (image_a.copy(), np.array([[0, 1, 1, 2, 2], [2, 3, 3, 1, 1]], np.float32))]
    images, targets = collate(batch)
    assert images.dtype == torch.float32 and images.shape == (3, 3, 4, 6)
    assert images[:, 0].eq(10).all() and images[:, 2].eq(30).all()  # BGR channels first
    assert targets.shape == (3, 2, 5)
    assert targets[1].eq(0).all() and targets[0, 1].eq(0).all() and targets[2, 1, 0] == 2


def test_loader_with_dataloader_padding_rows(scenes):
    dataset = TrainingDataset(scenes, 64, AugmentConfig.off())
    loader = DataLoader(dataset, batch_size=2, collate_fn=collate)
    images, targets = next(iter(loader))
    assert images.shape == (2, 3, 64, 64) and targets.shape == (2, 50, 5)


def test_multiscale_sizes():
    assert multiscale_sizes(640) == list(range(480, 801, 32))
    assert multiscale_sizes(416, (320, 640)) == list(range(320, 641, 32))


def test_ram_cache_gives_the_same_samples(scenes):
    augment = training_recipe("yolox-s").augment()
    cached = TrainingDataset(scenes, 128, augment, seed=2, cache=True, progress=False)
    plain = TrainingDataset(scenes, 128, augment, seed=2)
    assert cached._cache is not None and all(image is not None for image in cached._cache)
    for index in range(3):
        a, b = cached[index], plain[index]
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_distributed_ranks_split_the_epoch(scenes):
    dataset = TrainingDataset(scenes, 64, AugmentConfig.off())
    seen = []
    for rank in range(2):
        loader, sampler = build_loader(dataset, batch_size=1, workers=0, seed=9, rank=rank, world_size=2)
        sampler.set_epoch(4)
        seen.append(list(sampler))
    assert len(seen[0]) == len(seen[1]) == 3
    assert sorted(seen[0] + seen[1]) == list(range(6))


def test_show_batch_writes_labelled_grid(scenes, tmp_path, capsys):
    from yoloxkit.cli import main

    out = tmp_path / "grid.png"
    assert main(["show-batch", "--data", str(scenes.root), "--model", "yolox-nano", "--size", "128",
                 "--count", "4", "--out", str(out)]) == 0
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * 128 + 3 * 4, 2 * 128 + 3 * 4, 3)
    assert "wrote" in capsys.readouterr().out
    assert main(["show-batch", "--data", str(scenes.root), "--size", "100", "--out", str(out)]) == 2


def test_draw_sample_draws_boxes_and_skips_padding():
    from yoloxkit.data.show_batch import draw_sample

    image = np.zeros((100, 120, 3), np.uint8)
    targets = np.zeros((5, 5), np.float32)
    targets[0] = [2, 60, 50, 40, 30]  # box 40..80 x 35..65
    drawn = draw_sample(image, targets, NAMES)
    assert drawn[65, 60].any() and drawn[50, 40].any()  # bottom and left edges
    assert not drawn[50, 60].any() and not drawn[90, 100].any()  # inside and far outside stay black
    assert drawn[20:35, 40:70].any()  # the name label above the box
    assert not image.any()  # the input is not modified



def _noise_data(tmp_path, objects, width=128, height=96):
    """A split of one noise image (asymmetric, so a flip or HSV shows) with ``objects``
    [(class, x1, y1, x2, y2)]; returns the split and the image."""
    image = np.random.default_rng(11).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    cv2.imwrite(str(path), image)
    boxes = np.array([o[1:] for o in objects], np.float32).reshape(-1, 4)
    classes = np.array([o[0] for o in objects], np.int64)
    return DetectionData(NAMES, [ImageRecord(path, width, height, boxes, classes)], "coco", "train", tmp_path), image


PLAIN_HSV_FLIP = AugmentConfig(mosaic_prob=0.0, enable_mixup=False, hsv_prob=1.0, flip_prob=1.0)
BACKGROUND_FLIP = dataclasses.replace(PLAIN_HSV_FLIP, hsv_prob=0.0, keep_background=True)


def test_sample_without_boxes_is_only_padded(tmp_path):
    data, image = _noise_data(tmp_path, [])
    dataset = TrainingDataset(data, 128, PLAIN_HSV_FLIP)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        sample, targets = dataset[0]
        assert np.array_equal(sample, pad_to(image, 128)) and not targets.any()
    # keep_background: flipped and jittered like any other sample
    background = TrainingDataset(data, 128, dataclasses.replace(PLAIN_HSV_FLIP, keep_background=True))
    assert not np.array_equal(background[0][0], pad_to(image, 128))
    assert np.array_equal(TrainingDataset(data, 128, BACKGROUND_FLIP)[0][0], pad_to(cv2.flip(image, 1), 128))


def test_sample_whose_boxes_are_all_filtered_falls_back_to_the_original(tmp_path):
    data, image = _noise_data(tmp_path, [(0, 10, 10, 11, 40), (2, 50, 20, 80, 20.5)])  # 1 px wide, 0.5 px high
    sample, targets = TrainingDataset(data, 128, PLAIN_HSV_FLIP)[0]
    assert np.array_equal(sample, pad_to(image, 128))  # neither flipped nor HSV-jittered
    np.testing.assert_allclose(targets[:2], [[0, 10.5, 25, 1, 30], [2, 65, 20.25, 30, 0.5]])  # unfiltered
    assert not targets[2:].any()
    # keep_background: the augmented image, no targets
    sample, targets = TrainingDataset(data, 128, BACKGROUND_FLIP)[0]
    assert np.array_equal(sample, pad_to(cv2.flip(image, 1), 128)) and not targets.any()


def test_sample_with_a_kept_box_is_augmented_and_filtered(tmp_path):
    data, image = _noise_data(tmp_path, [(1, 10, 10, 50, 40), (0, 60, 30, 61, 60)])  # the second is filtered
    for augment in (dataclasses.replace(PLAIN_HSV_FLIP, hsv_prob=0.0), BACKGROUND_FLIP):
        sample, targets = TrainingDataset(data, 128, augment)[0]
        assert np.array_equal(sample, pad_to(cv2.flip(image, 1), 128))
        np.testing.assert_allclose(targets[:1], [[1, 128 - 30, 25, 40, 30]])
        assert not targets[1:].any()


def test_mosaic_whose_boxes_are_all_filtered_falls_back_to_the_mosaic(tmp_path):
    """No rotation or shear and a scale below 1: the 1 px wide box of every tile stays under the
    filter's 1 px, so each sample is the Mosaic output before HSV and flip, with all four boxes."""
    data, _ = _noise_data(tmp_path, [(1, 40, 20, 41, 60)])
    mosaic = AugmentConfig(mosaic_prob=1.0, mosaic_scale=(0.5, 0.9), degrees=0.0, shear=0.0, enable_mixup=False,
                           hsv_prob=1.0, flip_prob=1.0)
    plain = dataclasses.replace(mosaic, hsv_prob=0.0, flip_prob=0.0)
    background = dataclasses.replace(mosaic, keep_background=True)
    for seed in range(3):
        ours = TrainingDataset(data, 128, mosaic, seed=seed)[0]
        reference = TrainingDataset(data, 128, plain, seed=seed)[0]
        assert np.array_equal(ours[0], reference[0]) and np.array_equal(ours[1], reference[1])
        rows = ours[1][ours[1].any(1)]
        assert len(rows) == 4 and np.all(rows[:, 0] == 1) and np.all(rows[:, 3:].min(1) <= 1)
        kept = TrainingDataset(data, 128, background, seed=seed)[0]
        assert not kept[1].any() and not np.array_equal(kept[0], ours[0])
