"""Letterbox pre-processing: exact placement, pad value, ratio, and parity with the reference."""

import cv2
import numpy as np
import pytest

from yoloxkit.imaging import PAD_VALUE, letterbox, letterbox_batch, letterbox_ratio, to_size


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_wide_image_is_resized_to_width_and_padded_below():
    image = _image(100, 200)
    out, ratio = letterbox(image, 416)
    assert out.shape == (416, 416, 3) and out.dtype == np.uint8
    assert ratio == pytest.approx(416 / 200)
    resized = cv2.resize(image, (416, 208), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out[:208], resized)
    assert (out[208:] == PAD_VALUE).all()


def test_tall_image_is_padded_on_the_right_and_small_images_are_upscaled():
    image = _image(64, 32)
    out, ratio = letterbox(image, (128, 160))
    assert ratio == pytest.approx(2.0)
    np.testing.assert_array_equal(out[:, :64], cv2.resize(image, (64, 128), interpolation=cv2.INTER_LINEAR))
    assert (out[:, 64:] == 114).all()


def test_exact_size_image_is_copied_unchanged():
    image = _image(320, 416)
    out, ratio = letterbox(image, (320, 416))
    assert ratio == 1.0
    np.testing.assert_array_equal(out, image)


def test_matches_reference_preproc():
    from yolox.data.data_augment import preproc

    for h, w, size in [(576, 768, (416, 416)), (333, 501, (640, 640)), (480, 270, (320, 256))]:
        image = _image(h, w, seed=h)
        expected, expected_ratio = preproc(image, size)
        out, ratio = letterbox(image, size)
        assert ratio == expected_ratio
        np.testing.assert_array_equal(out.transpose(2, 0, 1).astype(np.float32), expected)


def test_batch_letterboxes_each_image_and_returns_ratios():
    images = [_image(100, 200, 1), _image(300, 150, 2), _image(64, 64, 3)]
    batch, ratios = letterbox_batch(images, 128)
    assert batch.shape == (3, 128, 128, 3) and batch.dtype == np.uint8
    for image, row, ratio in zip(images, batch, ratios):
        single, single_ratio = letterbox(image, 128)
        np.testing.assert_array_equal(row, single)
        assert ratio == single_ratio == letterbox_ratio(image.shape[:2], (128, 128))


@pytest.mark.parametrize("bad", [0, 100, (416,), (416, 415), -32])
def test_bad_sizes_are_rejected(bad):
    with pytest.raises(ValueError):
        to_size(bad)
