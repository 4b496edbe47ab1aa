"""Reading images: paths and arrays in, BGR uint8 out; bad files raise ImageReadError naming the file."""

import cv2
import numpy as np
import pytest

from yoloxkit.errors import ImageReadError
from yoloxkit.imaging import as_bgr, load_images, read_image


@pytest.fixture
def truncated_jpg(tmp_path, dog_jpg):
    data = dog_jpg.read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_reads_a_jpeg_like_opencv(dog_jpg):
    image = read_image(dog_jpg)
    assert image.shape == (576, 768, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, cv2.imread(str(dog_jpg)))


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="nope.jpg"):
        read_image(tmp_path / "nope.jpg")


def test_non_image_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image at all")
    with pytest.raises(ImageReadError, match="notes.jpg"):
        read_image(path)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="not an image file"):
        read_image(tmp_path)


def test_truncated_jpeg_is_detected(truncated_jpg):
    # OpenCV alone returns a partly grey picture for this file.
    assert cv2.imread(str(truncated_jpg)) is not None
    with pytest.raises(ImageReadError, match="half.jpg.*truncated"):
        read_image(truncated_jpg)


def test_jpeg_with_trailing_bytes_is_still_read(tmp_path, dog_jpg):
    path = tmp_path / "trailing.jpg"
    path.write_bytes(dog_jpg.read_bytes() + b"EXTRA-DATA-AFTER-THE-IMAGE")
    assert read_image(path).shape == (576, 768, 3)


def test_truncated_png_is_detected(tmp_path, dog_jpg):
    ok, encoded = cv2.imencode(".png", cv2.imread(str(dog_jpg)))
    path = tmp_path / "half.png"
    path.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.raises(ImageReadError, match="half.png"):
        read_image(path)


def test_array_conversions():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    bgr = as_bgr(gray)
    assert bgr.shape == (3, 4, 3) and (bgr[..., 0] == gray).all() and (bgr[..., 2] == gray).all()
    assert as_bgr(gray[..., None]).shape == (3, 4, 3)
    bgra = np.dstack([np.full((3, 4, 3), 7, np.uint8), np.zeros((3, 4), np.uint8)])
    assert (as_bgr(bgra) == 7).all() and as_bgr(bgra).shape == (3, 4, 3)
    three = np.zeros((3, 4, 3), np.uint8)
    assert as_bgr(three) is three


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((3, 4, 3), np.float32), "uint8"),
        (np.zeros((3, 4, 2), np.uint8), "shape"),
        (np.zeros((2, 3, 4, 3), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        ([1, 2, 3], "numpy array"),
    ],
)
def test_bad_arrays(bad, message):
    with pytest.raises(ImageReadError, match=message):
        as_bgr(bad, name="images[0]")


def test_load_images_mixes_paths_and_arrays(dog_jpg):
    arrays, names = load_images([dog_jpg, np.zeros((5, 6), np.uint8)])
    assert names == ["dog.jpg", None]
    assert arrays[0].shape == (576, 768, 3) and arrays[1].shape == (5, 6, 3)
    single, single_names = load_images(str(dog_jpg))
    assert len(single) == 1 and single_names == ["dog.jpg"]
