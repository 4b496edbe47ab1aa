"""The "no traceback" sweep (issue 32): every CLI command over a corpus of bad inputs made here.

Each case runs ``yoloxkit.cli.main`` in-process with the file descriptors captured (so C
libraries' warnings count too) and asserts what a user must see: exit code 2 (``check-data``
reports data problems with exit code 1), exactly one line on stderr, and no ``Traceback``
anywhere. A few hostile-but-valid inputs (thin images, byte-order marks) must simply work.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_synth import make_coco, make_voc, make_yolo
from yoloxkit.cli import main


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(path: Path, side: int = 20000) -> Path:
    """A valid 1-bit PNG of ``side`` x ``side`` pixels (a decompression bomb: a few hundred KB)."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body)
                     + _png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, dog_jpg) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    c: dict[str, Path] = {"dog": dog_jpg, "root": root}
    c["huge"] = huge_png(root / "huge.png")
    data = dog_jpg.read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    c["truncated"] = root / "truncated.jpg"
    (root / "notimage.jpg").write_text("this is not an image\n")
    c["notimage"] = root / "notimage.jpg"
    (root / "empty.jpg").write_bytes(b"")
    c["empty"] = root / "empty.jpg"
    (root / "notvideo.mp4").write_bytes(b"\x00garbage" * 100)
    c["notvideo"] = root / "notvideo.mp4"
    Image.new("RGB", (3000, 2), (120, 80, 40)).save(root / "wide.png")
    Image.new("RGB", (2, 3000), (120, 80, 40)).save(root / "tall.png")
    c["wide"], c["tall"] = root / "wide.png", root / "tall.png"
    (root / "afile").write_text("a regular file, not a folder\n")
    c["afile"] = root / "afile"
    (root / "weights_dir").mkdir()
    c["weights_dir"] = root / "weights_dir"
    (root / "garbage.pth").write_bytes(b"PK\x03\x04 not really a checkpoint" * 10)
    c["garbage_pth"] = root / "garbage.pth"
    (root / "garbage.onnx").write_bytes(b"\x08\x07 not an onnx graph" * 10)
    c["garbage_onnx"] = root / "garbage.onnx"
    (root / "lonely.xml").write_text('<?xml version="1.0"?><net name="m" version="11"><layers/></net>')
    c["xml_no_bin"] = root / "lonely.xml"
    c.update(_datasets(root))
    return c


def _datasets(root: Path) -> dict[str, Path]:
    names = ["cat", "dog"]
    yolo_split = {"train": {"a": [(0, 10, 10, 50, 40)], "b": [(1, 20, 20, 60, 70)]},
                  "val": {"c": [(0, 10, 10, 50, 40)]}}
    out: dict[str, Path] = {}

    latin1 = make_yolo(root / "yolo_latin1", yolo_split, names)
    (latin1 / "data.yaml").write_bytes("train: images/train\nval: images/val\nnames: [caf\xe9, d\xf6g]\n".encode("latin-1"))
    out["yolo_latin1_yaml"] = latin1

    binary = make_yolo(root / "yolo_binary_label", yolo_split, names)
    (binary / "labels" / "val" / "c.txt").write_bytes(bytes(range(256)))
    (binary / "labels" / "train" / "a.txt").write_bytes(bytes(range(256)))
    out["yolo_binary_label"] = binary

    utf16 = make_voc(root / "voc_utf16_labels", {"val": {"v1": [("cat", 5, 5, 40, 40, 0)]},
                                                  "train": {"t1": [("dog", 5, 5, 40, 40, 0)]}})
    (utf16 / "labels.txt").write_bytes("cat\ndog\n".encode("utf-16-le"))  # no byte-order mark: refused
    out["voc_utf16_labels"] = utf16
    utf16_bom = make_voc(root / "voc_utf16_bom_labels", {"val": {"v1": [("cat", 5, 5, 40, 40, 0)]},
                                                          "train": {"t1": [("dog", 5, 5, 40, 40, 0)]}})
    (utf16_bom / "labels.txt").write_bytes("cat\ndog\n".encode("utf-16"))  # with its mark: read
    out["voc_utf16_bom_labels"] = utf16_bom

    dup_voc = make_voc(root / "voc_dup", {"val": {"v1": [("cat", 5, 5, 40, 40, 0)], "v2": [("dog", 5, 5, 40, 40, 0)]},
                                           "train": {"t1": [("dog", 5, 5, 40, 40, 0)]}})
    (dup_voc / "ImageSets" / "Main" / "val.txt").write_text("v1\nv2\nv1\n")
    out["voc_dup_imagesets"] = dup_voc

    dup_coco = make_coco(root / "coco_dup", "val2017", {"a.jpg": [(0, 5, 5, 40, 40)], "b.jpg": [(1, 5, 5, 40, 40)]}, names)
    make_coco(dup_coco, "train2017", {"t.jpg": [(0, 5, 5, 40, 40)]}, names)
    _edit_json(dup_coco / "annotations" / "instances_val2017.json", _same_image_id)
    out["coco_dup_ids"] = dup_coco

    no_ann = make_coco(root / "coco_no_annotations", "val2017", {"a.jpg": [(0, 5, 5, 40, 40)]}, names)
    make_coco(no_ann, "train2017", {"t.jpg": [(0, 5, 5, 40, 40)]}, names)
    for split in ("val2017", "train2017"):
        _edit_json(no_ann / "annotations" / f"instances_{split}.json", lambda d: d.pop("annotations"))
    out["coco_no_annotations"] = no_ann

    huge = make_coco(root / "coco_huge_image", "val2017", {"a.jpg": [(0, 5, 5, 40, 40)]}, names)
    make_coco(huge, "train2017", {"t.jpg": [(0, 5, 5, 40, 40)]}, names)
    (huge / "val2017" / "a.jpg").unlink()
    huge_png(huge / "val2017" / "a.png")
    _edit_json(huge / "annotations" / "instances_val2017.json",
               lambda d: d["images"][0].update(file_name="a.png", width=20000, height=20000))
    out["coco_huge_image"] = huge

    thin = make_coco(root / "coco_thin", "val2017", {"a.png": [(0, 5, 0, 40, 2)]}, names, size=(3000, 2))
    Image.new("RGB", (3000, 2), (0, 0, 255)).save(thin / "val2017" / "a.png")
    out["coco_thin"] = thin

    bom = make_yolo(root / "yolo_bom", yolo_split, names)
    for label in (bom / "labels").rglob("*.txt"):
        label.write_bytes(b"\xef\xbb\xbf" + label.read_bytes())
    out["yolo_bom"] = bom
    return out


def _same_image_id(content: dict) -> None:
    """Give the second image the first one's id, its annotations too (two files, one id)."""
    content["images"][1]["id"] = content["images"][0]["id"]
    for annotation in content["annotations"]:
        annotation["image_id"] = content["images"][0]["id"]


def _edit_json(path: Path, change) -> None:
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


NANO = ["--model", "yolox-nano"]
TRAIN = NANO + ["--epochs", "1", "--size", "64", "--batch-size", "2", "--workers", "0", "--no-progress"]
DATASETS = ("yolo_latin1_yaml", "yolo_binary_label", "voc_utf16_labels", "voc_dup_imagesets", "coco_dup_ids",
            "coco_no_annotations")

# (case id, argv built from the corpus); every one must end with exit 2 and one stderr line.
REFUSED = [
    *[(f"predict-{k}", lambda c, k=k: ["predict", str(c[k]), "--no-save", "--no-progress", "--size", "64"])
      for k in ("huge", "truncated", "notimage", "empty")],
    *[(f"predict-weights-{k}", lambda c, k=k: ["predict", str(c["dog"]), "--no-save", "--weights", str(c[k])])
      for k in ("weights_dir", "garbage_pth", "garbage_onnx", "xml_no_bin")],
    ("predict-json-out-unwritable",
     lambda c: ["predict", str(c["dog"]), "--no-save", "--size", "64", "--json-out", str(c["afile"] / "p.json")]),
    ("predict-save-dir-is-file", lambda c: ["predict", str(c["dog"]), "--size", "64", "--save-dir", str(c["afile"])]),
    ("track-not-a-video", lambda c: ["track", str(c["notvideo"]), "--no-save", "--size", "64"]),
    ("track-weights-dir", lambda c: ["track", str(c["notvideo"]), "--no-save", "--weights", str(c["weights_dir"])]),
    ("track-eval-binary", lambda c: ["track-eval", "--gt", str(c["garbage_pth"]), "--pred", str(c["garbage_pth"])]),
    *[(f"eval-{k}", lambda c, k=k: ["eval", "--data", str(c[k]), "--split", "val", "--size", "64", "--no-progress"])
      for k in DATASETS + ("coco_huge_image",)],
    ("eval-json-out-unwritable", lambda c: ["eval", "--data", str(c["yolo_bom"]), "--split", "val", "--size", "64",
                                             "--no-progress", "--json-out", str(c["afile"] / "m.json")]),
    ("eval-plots-is-file", lambda c: ["eval", "--data", str(c["yolo_bom"]), "--split", "val", "--size", "64",
                                       "--no-progress", "--plots", str(c["afile"])]),
    *[(f"train-{k}", lambda c, k=k: ["train", "--data", str(c[k]), *TRAIN, "--out", str(c["root"] / f"run-{k}")])
      for k in DATASETS],
    ("train-resume-nothing", lambda c: ["train", "--resume", "--out", str(c["root"] / "no-such-run")]),
    ("export-weights-garbage", lambda c: ["export", "--weights", str(c["garbage_pth"]), "--out", str(c["root"] / "x.onnx")]),
    ("export-out-unwritable", lambda c: [*["export", *NANO, "--size", "64"], "--out", str(c["afile"] / "x.onnx")]),
    ("benchmark-weights-garbage", lambda c: ["benchmark", "--weights", str(c["garbage_pth"]), "--iters", "1"]),
    ("benchmark-image-truncated", lambda c: ["benchmark", *NANO, "--size", "64", "--iters", "1", "--warmup", "0",
                                              "--image", str(c["truncated"])]),
    ("convert-garbage-onnx", lambda c: ["convert", str(c["garbage_onnx"]), str(c["root"] / "converted.pth")]),
    *[(f"convert-dataset-{k}", lambda c, k=k: ["convert-dataset", str(c[k]), str(c["root"] / f"conv-{k}"), "--to", "coco"])
      for k in ("yolo_latin1_yaml", "voc_utf16_labels")],
    ("show-batch-binary-label", lambda c: ["show-batch", "--data", str(c["yolo_binary_label"]), "--size", "64",
                                            "--out", str(c["root"] / "batch.png")]),
    ("make-small-objects-no-annotations", lambda c: ["make-small-objects", "--source", str(c["coco_no_annotations"]),
                                                      "--split", "val2017", "--out", str(c["root"] / "mso"),
                                                      "--no-progress"]),
    ("serve-weights-dir", lambda c: ["serve", "--weights", str(c["weights_dir"]), "--port", "0"]),
]

# check-data reports a dataset's problems with exit code 1, or refuses an unreadable one with 2.
CHECKED = [(f"check-data-{k}", lambda c, k=k: ["check-data", "--data", str(c[k]), "--no-progress"])
           for k in DATASETS + ("coco_huge_image",)]

ACCEPTED = [
    ("predict-wide-and-tall", lambda c: ["predict", str(c["dog"]), str(c["wide"]), str(c["tall"]), "--no-save",
                                          "--size", "64", "--no-progress", "--json-out", str(c["root"] / "thin.json")]),
    ("eval-bom-labels", lambda c: ["eval", "--data", str(c["yolo_bom"]), "--split", "val", "--size", "64",
                                    "--no-progress"]),
    ("eval-plots-thin-image", lambda c: ["eval", "--data", str(c["coco_thin"]), "--split", "val2017", "--size", "64",
                                          "--no-progress", "--plots", str(c["root"] / "thin-plots")]),
    ("check-data-bom-labels", lambda c: ["check-data", "--data", str(c["yolo_bom"]), "--no-progress"]),
    ("check-data-utf16-labels-with-bom", lambda c: ["check-data", "--data", str(c["voc_utf16_bom_labels"]),
                                                     "--no-progress"]),
]


def _run(argv: list[str], capfd) -> tuple[int, str, str]:
    capfd.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code if isinstance(exc.code, int) else 2
    out, err = capfd.readouterr()
    return rc, out, err


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("case", REFUSED, ids=[case_id for case_id, _ in REFUSED])
def test_refused_with_one_line(case, corpus, capfd):
    rc, out, err = _run(case[1](corpus), capfd)
    assert "Traceback" not in out + err
    assert rc == 2, (rc, err)
    assert len(_lines(err)) == 1, err


@pytest.mark.parametrize("case", CHECKED, ids=[case_id for case_id, _ in CHECKED])
def test_check_data_reports_problems(case, corpus, capfd):
    rc, out, err = _run(case[1](corpus), capfd)
    assert "Traceback" not in out + err
    assert rc in (1, 2), (rc, out, err)
    if rc == 2:
        assert len(_lines(err)) == 1, err
    else:
        assert "0 errors" not in out, out


@pytest.mark.parametrize("case", ACCEPTED, ids=[case_id for case_id, _ in ACCEPTED])
def test_hostile_but_valid_inputs_work(case, corpus, capfd):
    rc, out, err = _run(case[1](corpus), capfd)
    assert "Traceback" not in out + err
    assert rc == 0, (rc, err)
    assert not [line for line in _lines(err) if "warning" in line.lower()], err


def test_thin_images_are_all_in_the_json(corpus, capfd):
    rc, _, err = _run(ACCEPTED[0][1](corpus), capfd)
    assert rc == 0, err
    records = json.loads((corpus["root"] / "thin.json").read_text())
    assert len(records) == 3
    assert np.all([isinstance(r, dict) for r in records])
