"""Issue 32 (hostile input), the image part: one decoder for every reader, one pixel limit,
extreme aspect ratios, EXIF orientation, and no codec chatter on stderr.

Every image is read by ``yoloxkit.imaging.decode.decode_image``: the header with Pillow first
(the pixel limit is checked there, before any pixel is decoded), the pixels with OpenCV
(EXIF orientation applied). ``read_image`` (predict, eval, training) and ``serve``'s
``decode_upload`` both call it, so they see the same array for the same bytes; ``image_size``
(the dataset readers) reports the upright size those pixels have.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from serve_support import png_bomb_header
from yoloxkit.cli import main
from yoloxkit.coco_names import COCO_NAMES
from yoloxkit.errors import ImageReadError
from yoloxkit.imaging import image_size, letterbox, letterbox_batch, read_image
from yoloxkit.serve.limits import UploadLimits, UploadRejected, decode_upload

PIL_BOMB_LIMIT = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS, Pillow's decompression-bomb limit
RNG = np.random.default_rng(0)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _write_grey_png(path: Path, width: int, height: int) -> None:
    """A valid, all-black grey PNG of ``width x height``, compressed row by row (a few MB of
    memory however large it is)."""
    compressor = zlib.compressobj(1)
    row = b"\x00" * (width + 1)
    parts = [compressor.compress(row * min(256, height - y)) for y in range(0, height, 256)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def _yolo_dataset(root: Path, images: dict[str, np.ndarray], labels: dict[str, list[str]],
                  splits=("train", "val")) -> Path:
    """A YOLO-txt dataset with the COCO names whose every split holds ``images`` (name -> BGR
    array, or encoded bytes) with ``labels`` (name -> label lines)."""
    for split in splits:
        for name, image in images.items():
            path = root / "images" / split / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(image if isinstance(image, bytes) else _png(image))
            label = root / "labels" / split / f"{Path(name).stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(line + "\n" for line in labels.get(name, [])))
    config = {split: f"images/{split}" for split in splits}
    (root / "data.yaml").write_text(yaml.safe_dump({**config, "names": list(COCO_NAMES)}))
    return root


# --- extreme aspect ratios (defect 2) ------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3000), (3000, 2), (1, 5000)])
def test_letterbox_keeps_at_least_one_pixel_of_a_thin_image(shape):
    image = RNG.integers(0, 255, (*shape, 3), dtype=np.uint8)
    canvas, ratio = letterbox(image, 64)
    assert canvas.shape == (64, 64, 3) and ratio == pytest.approx(64 / max(shape))
    batch, ratios = letterbox_batch([image, image], (64, 96))
    assert batch.shape == (2, 64, 96, 3) and ratios[0] == pytest.approx(min(64 / shape[0], 96 / shape[1]))


@pytest.fixture
def thin_folder(tmp_path, dog_jpg):
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "a_dog.jpg").write_bytes(dog_jpg.read_bytes())
    (folder / "b_wide.png").write_bytes(_png(RNG.integers(0, 255, (2, 3000, 3), dtype=np.uint8)))
    (folder / "c_tall.png").write_bytes(_png(RNG.integers(0, 255, (3000, 2, 3), dtype=np.uint8)))
    return folder


def test_predict_over_a_folder_with_3000x2_images_writes_every_result(thin_folder, tmp_path, capsys):
    json_out = tmp_path / "out.json"
    code = main(["predict", str(thin_folder), "--no-save", "--json-out", str(json_out), "--size", "320",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err
    records = json.loads(json_out.read_text())
    assert [(r["image"], r["width"], r["height"]) for r in records] == [
        ("a_dog.jpg", 768, 576), ("b_wide.png", 3000, 2), ("c_tall.png", 2, 3000)]
    assert any(d["name"] == "dog" for d in records[0]["detections"])


@pytest.fixture
def thin_dataset(tmp_path, dog_jpg):
    """YOLO-txt train/val splits: the demo picture, a 3000x2 and a 2x3000 image, each labelled."""
    dog = cv2.imread(str(dog_jpg))
    images = {"dog.png": dog, "wide.png": RNG.integers(0, 255, (2, 3000, 3), dtype=np.uint8),
              "tall.png": RNG.integers(0, 255, (3000, 2, 3), dtype=np.uint8)}
    labels = {"dog.png": ["16 0.29 0.63 0.24 0.55"], "wide.png": ["0 0.5 0.5 0.9 1.0"],
              "tall.png": ["0 0.5 0.5 1.0 0.9"]}
    return _yolo_dataset(tmp_path / "thin", images, labels)


@pytest.mark.parametrize("mosaic", [True, False])
def test_training_samples_of_thin_images(thin_dataset, mosaic):
    from yoloxkit.data import load_dataset
    from yoloxkit.data.augment import AugmentConfig
    from yoloxkit.data.dataset import TrainingDataset

    data = load_dataset(thin_dataset, split="train")
    augment = AugmentConfig() if mosaic else AugmentConfig(mosaic_prob=0.0, enable_mixup=False)
    for cache in (False, True):
        dataset = TrainingDataset(data, size=64, augment=augment, seed=1, cache=cache, progress=False)
        for epoch in range(4):
            dataset.set_epoch(epoch)
            for index in range(len(dataset)):
                image, targets = dataset[index]
                assert image.shape == (64, 64, 3) and targets.shape[1] == 5
        assert not dataset.unreadable_paths()


def test_a_tiny_training_run_with_thin_images_completes(thin_dataset, tmp_path):
    from tests.train_subset import one_thread, step_config
    from yoloxkit.engine import train

    with one_thread():
        train(step_config(thin_dataset, tmp_path / "run", batch_size=3), log=lambda message: None)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 2 and all(np.isfinite(epoch["total_loss"]) for epoch in history)


def test_eval_over_thin_images(thin_dataset, tmp_path, capsys):
    json_out = tmp_path / "metrics.json"
    code = main(["eval", "--data", str(thin_dataset), "--split", "val", "--size", "320", "--json-out",
                 str(json_out), "--no-progress"])
    assert code == 0 and "Traceback" not in capsys.readouterr().err
    assert json.loads(json_out.read_text())


# --- one pixel limit (defect 3) --------------------------------------------------------------------


def test_the_pixel_limit_is_pillows_bomb_limit_everywhere(monkeypatch):
    from yoloxkit.serve import limits

    monkeypatch.delenv("YOLOXKIT_MAX_PIXELS", raising=False)
    assert Image.MAX_IMAGE_PIXELS == PIL_BOMB_LIMIT
    assert limits.DEFAULT_MAX_PIXELS == PIL_BOMB_LIMIT
    assert UploadLimits().max_pixels == PIL_BOMB_LIMIT
    assert UploadLimits(max_pixels=None).max_pixels == PIL_BOMB_LIMIT  # serve's --max-pixels default
    monkeypatch.setenv("YOLOXKIT_MAX_PIXELS", "5000")
    assert UploadLimits(max_pixels=None).max_pixels == 5000


def test_a_large_image_is_refused_from_its_header_without_decoding(tmp_path):
    """A valid 9500x9500 PNG (90 250 000 pixels, 270 MB once decoded) is refused before decoding:
    the process's peak memory does not grow."""
    path = tmp_path / "big.png"
    _write_grey_png(path, 9500, 9500)
    script = (
        "import resource, sys\n"
        "from yoloxkit.imaging import read_image, image_size\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for read in (read_image, image_size):\n"
        "    try:\n"
        "        read(sys.argv[1])\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "YOLOXKIT_MAX_PIXELS"}
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env,
                          timeout=120)
    lines = done.stdout.strip().splitlines()
    message = (f"cannot read image {path}: 9500x9500 = 90250000 pixels exceeds the limit of {PIL_BOMB_LIMIT}"
               " (set YOLOXKIT_MAX_PIXELS to raise it)")
    assert lines[:2] == [f"ImageTooLargeError {message}"] * 2, done.stdout + done.stderr
    assert int(lines[2]) < 50  # MiB of peak memory added by both calls
    assert done.stderr == ""


def test_a_33000x33000_header_is_refused_by_every_reader(tmp_path, capsys):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb_header(33000, 33000))
    reason = f"33000x33000 = 1089000000 pixels exceeds the limit of {PIL_BOMB_LIMIT}"
    for read in (read_image, image_size):
        with pytest.raises(ImageReadError, match=reason):
            read(path)
    with pytest.raises(UploadRejected) as rejected:
        decode_upload(path.read_bytes(), UploadLimits(max_upload_bytes=10**6), "bomb.png")
    assert rejected.value.status_code == 413 and reason in rejected.value.detail

    code = main(["predict", str(path), "--no-save", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and reason in err and "Traceback" not in err


def test_yoloxkit_max_pixels_sets_the_limit_of_every_command(tmp_path, dog_jpg, monkeypatch, capsys):
    dog = cv2.imread(str(dog_jpg))
    root = _yolo_dataset(tmp_path / "data", {"dog.png": dog, "small.png": dog[:100, :100]},
                         {"dog.png": ["16 0.29 0.63 0.24 0.55"], "small.png": ["16 0.5 0.5 0.5 0.5"]})
    monkeypatch.setenv("YOLOXKIT_MAX_PIXELS", "20000")  # the 100x100 crop fits, the 768x576 picture does not
    reason = "768x576 = 442368 pixels exceeds the limit of 20000 (set YOLOXKIT_MAX_PIXELS to raise it)"

    assert main(["predict", str(root / "images" / "val"), "--no-save", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert reason in err and "dog.png" in err and "Traceback" not in err

    assert main(["check-data", "--data", str(root), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert reason in out + err and "Traceback" not in err

    code = main(["eval", "--data", str(root), "--split", "val", "--size", "320", "--no-progress"])
    out, err = capsys.readouterr()
    assert reason in out + err and "Traceback" not in err and code in (0, 2)

    with pytest.raises(UploadRejected) as rejected:
        decode_upload((root / "images" / "val" / "dog.png").read_bytes(), UploadLimits(max_pixels=None), "dog.png")
    assert rejected.value.status_code == 413


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1e6"])
def test_an_invalid_yoloxkit_max_pixels_is_one_line(value, dog_jpg, monkeypatch, capsys):
    monkeypatch.setenv("YOLOXKIT_MAX_PIXELS", value)
    assert main(["predict", str(dog_jpg), "--no-save", "--no-progress"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: YOLOXKIT_MAX_PIXELS must be a positive integer") and repr(value) in line


# --- EXIF orientation (defect 8) -------------------------------------------------------------------


def _exif_image(image: np.ndarray, fmt: str, orientation: int) -> bytes:
    picture = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    exif = picture.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    picture.save(buf, format=fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 8])
def test_image_size_is_the_size_of_the_decoded_upright_pixels(tmp_path, fmt, orientation):
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(_exif_image(RNG.integers(0, 255, (30, 50, 3), dtype=np.uint8), fmt, orientation))
    height, width = read_image(path).shape[:2]
    assert (width, height) == ((30, 50) if orientation >= 5 else (50, 30))
    assert image_size(path) == (width, height)


def test_a_png_whose_exif_chunk_follows_its_pixels(tmp_path):
    """OpenCV applies an ``eXIf`` chunk after the pixel data too, which Pillow's header misses."""
    data = _png(RNG.integers(0, 255, (30, 50, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = exif.tobytes()
    raw = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    end = data.rindex(b"IEND") - 4
    path = tmp_path / "late.png"
    path.write_bytes(data[:end] + _chunk(b"eXIf", raw) + data[end:])
    assert read_image(path).shape == (50, 30, 3)
    assert image_size(path) == (30, 50)


def test_exif_rotated_yolo_labels_score_like_the_physically_rotated_copy(tmp_path, dog_jpg, capsys):
    """The demo picture stored landscape with EXIF orientation 6 (portrait upright), and a copy
    rotated in its pixels: labels in the upright frame give AP50 100 on both."""
    from yoloxkit import Detector

    tagged = _exif_image(cv2.imread(str(dog_jpg)), "JPEG", 6)
    upright = cv2.imdecode(np.frombuffer(tagged, np.uint8), cv2.IMREAD_COLOR)
    assert upright.shape == (768, 576, 3)
    found = Detector("yolox-nano", size=416, conf=0.5).predict([upright])[0]
    assert COCO_NAMES.index("dog") in found.class_ids.tolist()
    height, width = upright.shape[:2]
    lines = [f"{c} {(x1 + x2) / 2 / width} {(y1 + y2) / 2 / height} {(x2 - x1) / width} {(y2 - y1) / height}"
             for (x1, y1, x2, y2), c in zip(found.boxes.tolist(), found.class_ids.tolist())]
    scores = {}
    for name, encoded in (("tagged", tagged), ("rotated", _png(upright))):
        suffix = ".jpg" if name == "tagged" else ".png"
        root = _yolo_dataset(tmp_path / name, {f"dog{suffix}": encoded}, {f"dog{suffix}": lines}, splits=("val",))
        json_out = tmp_path / f"{name}.json"
        assert main(["eval", "--data", str(root), "--size", "416", "--json-out", str(json_out), "--no-progress"]) == 0
        scores[name] = json.loads(json_out.read_text())["AP50"]
    assert scores == {"tagged": 100.0, "rotated": 100.0}

    assert main(["check-data", "--data", str(tmp_path / "tagged"), "--no-progress"]) == 0
    assert "size_mismatch" not in capsys.readouterr().out


# --- one decoder for predict and serve (defect 9) --------------------------------------------------


def test_a_16bit_png_gives_serve_and_predict_the_same_pixels(tmp_path):
    deep = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    path = tmp_path / "deep.png"
    path.write_bytes(_png(deep))
    served = decode_upload(path.read_bytes(), UploadLimits(), "deep.png")
    predicted = read_image(path)
    assert served.dtype == np.uint8 and served.shape == (48, 64, 3)
    np.testing.assert_array_equal(served, predicted)
    assert int(predicted.max()) == int(deep.max()) >> 8  # 16 bits scaled to 8, not clipped


def test_a_float_tiff_is_refused_by_serve_and_predict_alike(tmp_path, capsys):
    path = tmp_path / "float.tiff"
    Image.fromarray(RNG.random((40, 50), dtype=np.float32)).save(path)
    with pytest.raises(UploadRejected) as rejected:
        decode_upload(path.read_bytes(), UploadLimits(), "float.tiff")
    assert rejected.value.status_code == 415 and "floating-point samples" in rejected.value.detail
    with pytest.raises(ImageReadError, match="float.tiff: floating-point samples are not supported"):
        read_image(path)
    assert main(["predict", str(path), "--no-save", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "floating-point samples are not supported" in err and "Traceback" not in err


def test_serve_and_predict_decode_the_same_pixels_for_each_format(tmp_path, dog_jpg):
    dog = cv2.imread(str(dog_jpg))[:120, :160]
    for ext in (".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm"):
        ok, buf = cv2.imencode(ext, dog)
        path = tmp_path / f"dog{ext}"
        path.write_bytes(buf.tobytes())
        np.testing.assert_array_equal(decode_upload(buf.tobytes(), UploadLimits(), path.name), read_image(path))


# --- codec warnings (defect 12, part) --------------------------------------------------------------


def _png_with_bad_icc_profile() -> bytes:
    data = _png(RNG.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    iccp = _chunk(b"iCCP", b"bogus profile\x00\x00" + zlib.compress(b"\x00" * 64))
    return data[:33] + iccp + data[33:]  # after IHDR


def test_a_png_with_a_bad_icc_profile_prints_nothing(tmp_path, capfd):
    path = tmp_path / "icc.png"
    path.write_bytes(_png_with_bad_icc_profile())
    capfd.readouterr()
    image = read_image(path)
    served = decode_upload(path.read_bytes(), UploadLimits(), "icc.png")
    assert capfd.readouterr().err == ""
    assert image.shape == (8, 8, 3)
    np.testing.assert_array_equal(image, served)


def _damaged(kind: str) -> bytes:
    image = RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    if kind == "cut.bmp":  # OpenCV logs "imdecode_ ... Unexpected end of input stream"
        return cv2.imencode(".bmp", image)[1].tobytes()[:3000]
    data = bytearray(_png(image))  # libpng prints "libpng error: IDAT: CRC error"
    data[data.index(b"IDAT") + 50] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize("name", ["cut.bmp", "flipped.png"])
def test_a_damaged_image_is_one_error_and_nothing_on_stderr(tmp_path, capfd, name):
    path = tmp_path / name
    path.write_bytes(_damaged(name))
    capfd.readouterr()
    with pytest.raises(ImageReadError, match=name):
        read_image(path)
    with pytest.raises(UploadRejected) as rejected:
        decode_upload(path.read_bytes(), UploadLimits(), name)
    assert rejected.value.status_code == 400
    assert capfd.readouterr().err == ""
