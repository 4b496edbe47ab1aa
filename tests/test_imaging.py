"""The imaging layer: one suffix list, folder listing, and the one letterbox that training and
inference share (same pixels, same pad value, same ratio as the reference ``preproc``)."""

import cv2
import numpy as np
import pytest

import yoloxkit.data.mosaic
import yoloxkit.data.transforms
from yoloxkit.errors import ImageReadError
from yoloxkit.imaging import (
    IMAGE_SUFFIXES,
    PAD_VALUE,
    image_files,
    image_size,
    is_image_file,
    letterbox,
    letterbox_batch,
    list_images,
    to_size,
)
from yoloxkit.imaging.letterbox import fit_size, pad_to


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path, h=8, w=12):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), _image(h, w))
    return path


# ------------------------------------------------------------------------------------ files


def test_one_suffix_list_for_datasets_and_inference():
    dataset_suffixes = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jpe"}
    inference_suffixes = dataset_suffixes | {".jp2", ".pbm", ".pgm", ".ppm"}
    assert IMAGE_SUFFIXES == inference_suffixes and isinstance(IMAGE_SUFFIXES, frozenset)
    assert is_image_file("a/B.JPG") and is_image_file("x.ppm") and not is_image_file("labels.txt")


def test_list_images_is_sorted_and_recursive_unless_told(tmp_path):
    _write(tmp_path / "b.png")
    _write(tmp_path / "a.jpg")
    _write(tmp_path / "sub" / "c.jpg")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "folder.jpg").mkdir()  # a directory is never an image
    assert list_images(tmp_path) == [tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "sub" / "c.jpg"]
    assert list_images(tmp_path, recursive=False) == [tmp_path / "a.jpg", tmp_path / "b.png"]


def test_image_files_takes_files_and_folders(tmp_path):
    folder = tmp_path / "imgs"
    _write(folder / "b.jpg")
    _write(folder / "a.png")
    _write(folder / "deeper" / "c.jpg")  # folders are not searched recursively
    single = _write(tmp_path / "z.bmp")
    assert image_files(folder) == [folder / "a.png", folder / "b.jpg"]
    assert image_files([single, str(folder)]) == [single, folder / "a.png", folder / "b.jpg"]


def test_image_files_errors_name_the_problem(tmp_path):
    with pytest.raises(ImageReadError, match="image or folder not found: .*nope"):
        image_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="no images in folder .*empty"):
        image_files(tmp_path / "empty")
    with pytest.raises(ImageReadError, match="no images given"):
        image_files([])


def test_image_size_reads_the_header(tmp_path):
    assert image_size(_write(tmp_path / "a.png", h=7, w=19)) == (19, 7)
    with pytest.raises(ImageReadError, match="not found"):
        image_size(tmp_path / "missing.jpg")


# ------------------------------------------------------------------------------------ letterbox


def _reference_letterbox(image, size):
    """The letterbox written out: ratio min(h/H, w/W), sides truncated, bilinear, pad 114 below/right."""
    ratio = min(size[0] / image.shape[0], size[1] / image.shape[1])
    new_h, new_w = int(image.shape[0] * ratio), int(image.shape[1] * ratio)
    resized = image if (new_h, new_w) == image.shape[:2] else cv2.resize(image, (new_w, new_h),
                                                                          interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size[0], size[1], 3), 114, dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, ratio


CASES = [
    (100, 200, (416, 416)),  # inference: wide image, padded below
    (64, 32, (128, 160)),  # upscaled, padded on the right
    (320, 416, (320, 416)),  # exact fit: copied unchanged
    (120, 160, (96, 96)),  # training sizes need not be multiples of 32
    (300, 301, (416, 416)),  # side truncation: int(301 * 416 / 301) may be 415
    (179, 320, (256, 320)),  # MixUp: an already fitted image into the output size
    (256, 320, (256, 320)),
]


@pytest.mark.parametrize("h, w, size", CASES)
def test_letterbox_is_the_written_out_rule(h, w, size):
    image = _image(h, w, seed=h + w)
    out, ratio = letterbox(image, size)
    expected, expected_ratio = _reference_letterbox(image, size)
    assert ratio == expected_ratio and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    assert out is not image and not np.shares_memory(out, image)  # always a new canvas
    assert fit_size(h, w, size) == (ratio, int(h * ratio), int(w * ratio))


@pytest.mark.parametrize("h, w, size", CASES)
def test_letterbox_matches_reference_preproc_for_training_and_inference_sizes(h, w, size):
    from yolox.data.data_augment import preproc

    image = _image(h, w, seed=h * w)
    expected, expected_ratio = preproc(image, size)
    out, ratio = letterbox(image, size)
    assert ratio == expected_ratio
    np.testing.assert_array_equal(out.transpose(2, 0, 1).astype(np.float32), expected)


def test_batch_rows_are_single_letterboxes():
    images = [_image(h, w, seed=k) for k, (h, w, _) in enumerate(CASES)]
    batch, ratios = letterbox_batch(images, (96, 128))
    assert batch.shape == (len(images), 96, 128, 3) and ratios.dtype == np.float64
    for image, row, ratio in zip(images, batch, ratios):
        single, single_ratio = letterbox(image, (96, 128))
        np.testing.assert_array_equal(row, single)
        assert ratio == single_ratio


def test_pad_to_places_the_image_top_left():
    image = _image(30, 50)
    out = pad_to(image, (64, 64))
    np.testing.assert_array_equal(out[:30, :50], image)
    assert (out[30:] == PAD_VALUE).all() and (out[:, 50:] == PAD_VALUE).all()
    with pytest.raises(ValueError, match="does not fit"):
        pad_to(image, (16, 64))


def test_sizes_letterbox_accepts_and_model_sizes_it_rejects():
    assert letterbox(_image(10, 10), 20)[0].shape == (20, 20, 3)
    with pytest.raises(ValueError):
        letterbox(_image(10, 10), 0)
    with pytest.raises(ValueError):
        letterbox(_image(10, 10), (20, 20, 3))
    with pytest.raises(ValueError, match="multiples of 32"):
        to_size(20)


def test_training_uses_the_same_letterbox_and_pad_value():
    assert PAD_VALUE == 114
    assert yoloxkit.data.mosaic.letterbox is letterbox
    assert yoloxkit.data.mosaic.PAD_VALUE is PAD_VALUE and yoloxkit.data.transforms.PAD_VALUE is PAD_VALUE
