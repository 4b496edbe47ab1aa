"""Hostile dataset text (issue 32, items 4, 10 and 11): every text file is read as UTF-8 (a
byte-order mark dropped; UTF-16/32 with their mark) or refused in one line naming it; repeated
image ids, file names and ImageSets entries are errors, not counted twice; a COCO json without
``annotations`` is refused by every command. All through the public CLI and ``load_dataset``."""

from __future__ import annotations

import codecs
import json

import numpy as np
import pytest

from data_synth import make_coco, make_voc, make_yolo, voc_xml
from yoloxkit.cli import main
from yoloxkit.data import load_dataset

NAMES = ["bird", "cat", "dog"]  # COCO classes, so the bundled nano model evaluates them
EVAL = ["--model", "yolox-nano", "--size", "64", "--batch-size", "2", "--no-progress"]
TRAIN = ["--model", "yolox-nano", "--size", "64", "--batch-size", "2", "--workers", "0", "--epochs", "1",
         "--max-iters-per-epoch", "1", "--no-progress", "--no-plots"]


def _check(path, capsys, *extra) -> tuple[int, str, str]:
    code = main(["check-data", "--data", str(path), "--quick", "--no-progress", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def _eval(path, split, capsys) -> tuple[int, str]:
    code = main(["eval", "--data", str(path), "--split", split, *EVAL])
    return code, capsys.readouterr().err.strip()


def _one_line(err: str, *parts: str) -> None:
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, err


def _boxes(data) -> list[tuple[str, list, list]]:
    return [(r.path.name, r.boxes.tolist(), r.class_ids.tolist()) for r in data.records]


@pytest.fixture()
def yolo(tmp_path):
    return make_yolo(tmp_path / "y", {"train": {"a": [(1, 10, 20, 50, 60), (2, 5, 5, 30, 40)], "b": [(0, 1, 1, 9, 9)]},
                                      "val": {"c": [(2, 20, 10, 60, 50)]}}, NAMES)


@pytest.fixture()
def voc(tmp_path):
    return make_voc(tmp_path / "voc", {"train": {"a": [("dog", 11, 21, 40, 50, 0)], "b": [("cat", 2, 2, 30, 30, 0)]},
                                       "val": {"c": [("bird", 5, 5, 40, 40, 0)], "d": [("dog", 3, 3, 20, 20, 0)]}},
                    labels=NAMES)


def _coco(tmp_path, split="val"):
    return make_coco(tmp_path / "c", split, {"a.jpg": [(0, 5, 5, 30, 30)], "b.jpg": [(1, 10, 10, 60, 50)]}, NAMES)


def _edit_json(path, change) -> None:
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


# --- encodings ---------------------------------------------------------------------------------


def test_yolo_label_file_with_utf8_bom_reads_the_same_boxes(yolo, capsys):
    plain = _boxes(load_dataset(yolo, "train"))
    label = yolo / "labels" / "train" / "a.txt"
    label.write_bytes(codecs.BOM_UTF8 + label.read_bytes())
    assert _boxes(load_dataset(yolo, "train")) == plain
    code, out, _ = _check(yolo, capsys)
    assert code == 0 and "0 errors" in out


def test_voc_imagesets_and_labels_with_utf8_bom_read_the_same(voc, capsys):
    plain = load_dataset(voc, "train")
    for path in (voc / "ImageSets" / "Main" / "train.txt", voc / "labels.txt"):
        path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    data = load_dataset(voc, "train")
    assert [r.image_id for r in data.records] == ["a", "b"]  # no invisible character in the id
    assert data.names == NAMES and _boxes(data) == _boxes(plain)
    code, out, _ = _check(voc, capsys)
    assert code == 0 and "0 errors" in out


def test_utf16_and_utf32_text_with_a_byte_order_mark_are_read(voc, yolo, capsys):
    (voc / "labels.txt").write_text("".join(n + "\n" for n in NAMES), encoding="utf-16")
    assert load_dataset(voc, "train").names == NAMES
    label = yolo / "labels" / "train" / "a.txt"
    plain = _boxes(load_dataset(yolo, "train"))
    label.write_text(label.read_text(), encoding="utf-32")
    assert _boxes(load_dataset(yolo, "train")) == plain
    code, out, _ = _check(voc, capsys)
    assert code == 0 and "0 errors" in out


def test_coco_json_with_utf8_bom_is_read(tmp_path, capsys):
    root = _coco(tmp_path)
    plain = _boxes(load_dataset(root, "val"))
    ann = root / "annotations" / "instances_val.json"
    ann.write_bytes(codecs.BOM_UTF8 + ann.read_bytes())
    assert _boxes(load_dataset(root, "val")) == plain
    code, out, _ = _check(root, capsys)
    assert code == 0 and "0 errors" in out


def test_latin1_data_yaml_is_refused_in_one_line(yolo, capsys):
    (yolo / "data.yaml").write_bytes("train: images/train\nval: images/val\nnames: [bird, caf\xe9, dog]\n"
                                     .encode("latin-1"))
    code, _, err = _check(yolo / "data.yaml", capsys)
    assert code == 2
    _one_line(err, "data.yaml", "not UTF-8 text (byte 0xe9 at offset 53)", "save it as UTF-8")
    code, err = _eval(yolo / "data.yaml", "val", capsys)
    assert code == 2
    _one_line(err, "data.yaml", "byte 0xe9")


def test_latin1_names_files_are_refused_in_one_line(yolo, voc, tmp_path, capsys):
    (yolo / "data.yaml").unlink()
    (yolo / "classes.txt").write_bytes("bird\ncaf\xe9\ndog\n".encode("cp1252"))
    code, _, err = _check(yolo, capsys)
    assert code == 2
    _one_line(err, "class-names file", "classes.txt", "byte 0xe9 at offset 8")
    names = tmp_path / "names.yaml"
    names.write_bytes("names: [bird, caf\xe9, dog]\n".encode("latin-1"))
    code = main(["eval", "--data", str(voc), "--split", "val", "--names", str(names), *EVAL])
    _one_line(capsys.readouterr().err.strip(), "names.yaml", "byte 0xe9")
    assert code == 2


def test_binary_label_file_is_an_error_naming_it(yolo, capsys):
    label = yolo / "labels" / "val" / "c.txt"
    label.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    code, out, _ = _check(yolo, capsys)
    assert code == 1
    assert "labels/val/c.txt: not text (NUL byte at offset 8" in out and "1 errors" in out
    code, err = _eval(yolo, "val", capsys)
    assert code == 2
    _one_line(err, "labels/val/c.txt", "NUL byte at offset 8")


def test_latin1_label_file_is_an_error_naming_it(yolo, capsys):
    (yolo / "labels" / "val" / "c.txt").write_bytes("2 0.5 0.5 0.2 0.2 # chat noir \xe9\n".encode("latin-1"))
    code, out, _ = _check(yolo, capsys)
    assert code == 1 and "labels/val/c.txt: not UTF-8 text (byte 0xe9 at offset 30)" in out


def test_voc_xml_encodings(voc, capsys):
    xml = voc_xml("a.jpg", 96, 64, [("dog", 11, 21, 40, 50, 0)]).replace("<annotation>", "<annotation><owner>Caf\xe9</owner>")
    (voc / "Annotations" / "a.xml").write_bytes(('<?xml version="1.0" encoding="ISO-8859-1"?>' + xml).encode("latin-1"))
    assert [r.path.name for r in load_dataset(voc, "train").records] == ["a.jpg", "b.jpg"]  # declared: read
    (voc / "Annotations" / "b.xml").write_bytes(b'<?xml version="1.0" encoding="no-such-codec"?><annotation/>')
    code, out, _ = _check(voc, capsys, "--split", "train")
    assert code == 1 and "Annotations/b.xml: not valid XML (unknown encoding" in out and "1 errors" in out
    code, err = _eval(voc, "train", capsys)
    assert code == 2
    _one_line(err, "b.xml", "not valid XML")


# --- duplicates --------------------------------------------------------------------------------


def test_coco_duplicate_image_entry_is_an_error(tmp_path, capsys):
    root = _coco(tmp_path)
    ann = root / "annotations" / "instances_val.json"
    _edit_json(ann, lambda c: c["images"].append(dict(c["images"][1])))  # b.jpg, id 2, listed twice
    code, out, _ = _check(root, capsys)
    assert code == 1
    assert "instances_val.json: images[2]: image id 2 appears 2 times (first duplicate: file b.jpg)" in out
    assert "split val: 2 images, 2 boxes" in out and "1 errors" in out


def test_eval_refuses_duplicate_image_ids_instead_of_counting_twice(tmp_path, capsys):
    root = _coco(tmp_path)
    _edit_json(root / "annotations" / "instances_val.json", lambda c: c["images"].append(dict(c["images"][0])))
    code, err = _eval(root, "val", capsys)
    assert code == 2
    _one_line(err, "instances_val.json", "image id 1 appears 2 times (first duplicate: file a.jpg)",
              "ids must be unique")


def test_coco_duplicate_id_on_another_file_does_not_take_its_boxes(tmp_path, capsys):
    root = make_coco(tmp_path / "c", "val", {"a.jpg": [(0, 5, 5, 30, 30)], "b.jpg": [(1, 10, 10, 60, 50)],
                                             "c.jpg": [(2, 20, 20, 50, 50)]}, NAMES)

    def same_id(content):
        content["images"][2]["id"] = 2  # c.jpg claims b.jpg's id
        content["annotations"] = content["annotations"][:2]

    _edit_json(root / "annotations" / "instances_val.json", same_id)
    code, out, _ = _check(root, capsys)
    assert code == 1 and "image id 2 appears 2 times (first duplicate: file c.jpg)" in out
    data = load_dataset(root, "val", strict=False)
    assert [r.path.name for r in data.records] == ["a.jpg", "b.jpg"]
    code, err = _eval(root, "val", capsys)
    assert code == 2
    _one_line(err, "instances_val.json", "first duplicate: file c.jpg")


def test_coco_duplicate_file_names_and_annotation_ids_are_errors(tmp_path, capsys):
    root = _coco(tmp_path)

    def repeat(content):
        content["images"].append({**content["images"][0], "id": 7})
        content["annotations"][1]["id"] = content["annotations"][0]["id"]

    _edit_json(root / "annotations" / "instances_val.json", repeat)
    code, out, _ = _check(root, capsys)
    assert code == 1
    assert "images[2]: file a.jpg appears 2 times (image ids 1, 7); file names must be unique" in out
    assert "annotations[1]: annotation id 1 appears 2 times" in out and "2 errors" in out


def test_voc_imagesets_duplicate_entry_is_an_error(voc, capsys):
    split = voc / "ImageSets" / "Main" / "val.txt"
    split.write_bytes(codecs.BOM_UTF8 + b"c\nd\n  c  \n")  # the same id after the BOM and blanks
    code, out, _ = _check(voc, capsys, "--split", "val")
    assert code == 1
    assert "val.txt: line 3: image id c is listed again (first at line 1)" in out
    assert "split val: 2 images, 2 boxes" in out and "1 errors" in out
    code, err = _eval(voc, "val", capsys)
    assert code == 2
    _one_line(err, "val.txt", "line 3", "image id c is listed again")


# --- COCO files without annotations ------------------------------------------------------------


def test_coco_without_annotations_is_refused_by_every_command(tmp_path, capsys):
    root = _coco(tmp_path, "train")
    make_coco(root, "val", {"c.jpg": [(2, 5, 5, 40, 40)]}, NAMES)
    _edit_json(root / "annotations" / "instances_train.json", lambda c: c.pop("annotations"))
    code, out, _ = _check(root, capsys)
    assert code == 1
    assert "split train: ERROR" in out and "instances_train.json: no 'annotations' list" in out
    code, err = _eval(root, "train", capsys)
    assert code == 2
    _one_line(err, "instances_train.json", "no 'annotations' list")
    code = main(["train", "--data", str(root), *TRAIN, "--out", str(tmp_path / "run")])
    assert code == 2
    _one_line(capsys.readouterr().err.strip(), "instances_train.json", "no 'annotations' list")


def test_coco_empty_annotations_list_is_background_with_a_warning(tmp_path, capsys):
    root = _coco(tmp_path)
    _edit_json(root / "annotations" / "instances_val.json", lambda c: c.update(annotations=[]))
    code, out, _ = _check(root, capsys)
    assert code == 0
    assert "instances_val.json: annotations: empty: every image is background" in out
    assert "0 errors, 1 warnings" in out
    data = load_dataset(root, "val")
    assert len(data.records) == 2 and all(len(r.boxes) == 0 for r in data.records)
    assert np.all([r.class_ids.size == 0 for r in data.records])


def test_yolo_image_listed_twice_in_a_split_is_an_error(yolo, capsys):
    (yolo / "data.yaml").write_text("train: images/train\nval: [images/val, images/val]\nnames: [bird, cat, dog]\n")
    code, out, _ = _check(yolo / "data.yaml", capsys, "--split", "val")
    assert code == 1 and "images/val/c.png: listed again in split 'val'" in out
    assert "split val: 1 images, 1 boxes" in out and "1 errors" in out


def test_train_refuses_a_training_split_without_boxes(tmp_path, capsys):
    root = _coco(tmp_path, "train")
    make_coco(root, "val", {"v.jpg": [(0, 5, 5, 30, 30)]}, NAMES)
    _edit_json(root / "annotations" / "instances_train.json", lambda c: c.update(annotations=[]))
    code = main(["train", "--data", str(root), *TRAIN, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    _one_line(err, "instances_train.json", "no boxes to train on")
    assert not (tmp_path / "run" / "last.pth").exists()
