"""The dataset-format registry (:mod:`yoloxkit.data.formats`): one entry drives layout
detection, loading, converting and the ``convert-dataset --to`` choices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_synth import make_coco, make_voc, make_yolo
from yoloxkit.cli import build_parser
from yoloxkit.data import detect_layout, list_splits, load_dataset
from yoloxkit.data import formats
from yoloxkit.data.convert import FORMATS, convert_dataset
from yoloxkit.data.dataset_format import DatasetFormat, Layout
from yoloxkit.data.records import DetectionData, ImageRecord
from yoloxkit.data.writing import as_linker
from yoloxkit.errors import DatasetError


def test_registry_order_and_lookup():
    assert formats.format_names() == ("coco", "voc", "yolo") == FORMATS
    for name in formats.format_names():
        entry = formats.dataset_format(name)
        assert entry.name == name and callable(entry.detect) and callable(entry.write)
    with pytest.raises(KeyError, match="unknown dataset format 'csv'"):
        formats.dataset_format("csv")


def test_each_format_detects_its_own_layout(tmp_path):
    coco = make_coco(tmp_path / "c", "val", {"a.jpg": [(0, 5, 5, 30, 30)]}, ["cat"])
    voc = make_voc(tmp_path / "v", {"val": {"a": [("cat", 5, 5, 30, 30, 0)]}}, labels=["cat"])
    yolo = make_yolo(tmp_path / "y", {"val": {"a": [(0, 5, 5, 30, 30)]}}, ["cat"])
    for root, name in ((coco, "coco"), (voc, "voc"), (yolo, "yolo")):
        assert detect_layout(root).format == name
        others = [f for f in formats.all_formats() if f.name != name]
        assert all(f.detect(Path(root)) is None for f in others), name


def test_unknown_layout_message_lists_every_format(tmp_path):
    with pytest.raises(DatasetError) as info:
        detect_layout(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: unknown dataset layout; expected COCO (annotations/instances_SPLIT.json), "
        "VOC (Annotations/, ImageSets/Main/, JPEGImages/) or YOLO (images/SPLIT/, labels/SPLIT/ or a data YAML)"
    )


# A toy format: DIR/boxes_SPLIT.json = {"names": [...], "images": [[relative path, w, h, [[c, x1, y1, x2, y2], ...]], ...]}
def _detect(path: Path) -> Layout | None:
    return Layout("toy", path) if path.is_dir() and any(path.glob("boxes_*.json")) else None


def _splits(layout: Layout) -> tuple[list[str], dict[str, str]]:
    return sorted(p.stem[len("boxes_"):] for p in layout.root.glob("boxes_*.json")), {}


def _read(layout: Layout, split: str, names) -> DetectionData:
    content = json.loads((layout.root / f"boxes_{split}.json").read_text())
    records = [ImageRecord(layout.root / p, w, h, np.array([o[1:] for o in objs], np.float32).reshape(-1, 4),
                           np.array([o[0] for o in objs], np.int64)) for p, w, h, objs in content["images"]]
    return DetectionData(names or content["names"], records, "toy", split, layout.root)


def _write(splits: list[DetectionData], root: Path, progress: bool = True, link="copy") -> None:
    linker = as_linker(link)
    for data in splits:
        images = []
        for r in data.records:
            linker(r.path, root / data.split / r.path.name)
            objs = [[int(c), *map(float, b)] for c, b in zip(r.class_ids, r.boxes)]
            images.append([f"{data.split}/{r.path.name}", r.width, r.height, objs])
        (root / f"boxes_{data.split}.json").write_text(json.dumps({"names": data.names, "images": images}))


TOY = DatasetFormat(name="toy", hint="TOY (boxes_SPLIT.json)", detect=_detect, splits=_splits, read=_read,
                    write=_write)


def test_one_registry_entry_adds_a_format(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "DATASET_FORMATS", (*formats.DATASET_FORMATS, TOY))
    coco = make_coco(tmp_path / "c", "val", {"a.jpg": [(1, 5, 5, 30, 30)], "b.jpg": []}, ["cat", "dog"])
    # converting to it, detecting it, listing and loading its splits
    done = convert_dataset(coco, tmp_path / "t", "toy", progress=False)
    assert done.images == 2
    assert detect_layout(tmp_path / "t").format == "toy"
    assert list_splits(tmp_path / "t") == ["val"]
    data = load_dataset(tmp_path / "t")
    assert (data.format, data.names, len(data.records)) == ("toy", ["cat", "dog"], 2)
    assert data.records[0].boxes.tolist() == [[5, 5, 30, 30]] and data.records[0].class_ids.tolist() == [1]
    # and back to COCO
    convert_dataset(tmp_path / "t", tmp_path / "c2", "coco", progress=False)
    assert load_dataset(tmp_path / "c2").records[0].boxes.tolist() == [[5, 5, 30, 30]]
    # the CLI offers it, and the unknown-layout message names it
    convert = build_parser()._subparsers._group_actions[0].choices["convert-dataset"]
    to = next(a for a in convert._actions if a.dest == "to")
    assert tuple(to.choices) == ("coco", "voc", "yolo", "toy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"YOLO \(images/SPLIT/, labels/SPLIT/ or a data YAML\) or TOY \(boxes_SPLIT\.json\)$"):
        detect_layout(tmp_path / "empty")
