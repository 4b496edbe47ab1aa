"""``convert-dataset``: COCO json <-> Pascal VOC <-> YOLO-txt, every split, names and boxes exact.

Split names are kept (COCO ``val2017`` -> VOC ``ImageSets/Main/val2017.txt`` -> YOLO
``images/val2017``). Class names keep their order: VOC gets a ``labels.txt``, YOLO a
``data.yaml``. Numbers are written so that reading the copy gives bit-identical float32 boxes:
COCO ``bbox`` as exact doubles, VOC as ``coordinate + 1`` (VOC's 1-based pixels, see
:mod:`.voc`), YOLO as full-precision normalised values. Ignore flags map to COCO ``iscrowd`` and
VOC ``difficult``; YOLO-txt has no such field, so ignored boxes are left out of YOLO labels
(as Ultralytics' own converters do) rather than turned into ordinary objects. Images are hard-linked
(copied where links are impossible). The output is built in a temporary directory beside ``DST``
and renamed at the end, so an interrupted conversion leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError
from ..io import atomic_write_text
from . import list_splits, load_dataset
from .layout import COCO, VOC, YOLO
from .records import DetectionData
from .voc import VOC_OFFSET
from .yolo import xyxy_to_yolo, yolo_to_xyxy

__all__ = ["convert_dataset", "write_coco", "write_voc", "write_yolo", "FORMATS"]

FORMATS = (COCO, VOC, YOLO)


def convert_dataset(src: str | os.PathLike, dst: str | os.PathLike, to: str, names=None,
                    progress: bool = True) -> list[DetectionData]:
    """Convert every split of the dataset at ``src`` into format ``to`` at ``dst`` (which must
    not exist or be empty). Returns the splits that were read."""
    if to not in FORMATS:
        raise DatasetError(f"--to: unknown format {to!r}; choose one of {', '.join(FORMATS)}")
    dst = Path(dst)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DatasetError(f"{dst}: destination exists and is not empty")
    splits = [load_dataset(src, split=name, names=names) for name in list_splits(src)]
    if not splits:
        raise DatasetError(f"{src}: no splits found")
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        writer = {COCO: write_coco, VOC: write_voc, YOLO: write_yolo}[to]
        writer(splits, staging, progress=progress)
        if dst.exists():
            dst.rmdir()
        os.replace(staging, dst)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return splits


def _link_image(source: Path, target: Path) -> None:
    """Hard-link (or copy) ``source`` to ``target``; an existing identical target is fine."""
    if target.exists():
        if target.samefile(source) or target.read_bytes() == source.read_bytes():
            return
        raise DatasetError(f"{source}: another image with the same file name was already written to {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _num(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _decimal32(value: float) -> Decimal:
    """The shortest decimal that reads back as the same float32 (e.g. 217.62, not 217.6199951...)."""
    return Decimal(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def _bar(items, desc: str, progress: bool):
    return tqdm(items, desc=desc, unit="img", leave=False, disable=not progress)


# --- COCO -----------------------------------------------------------------------------------


def write_coco(splits: list[DetectionData], root: Path, progress: bool = True) -> None:
    """Write ``annotations/instances_SPLIT.json`` and ``SPLIT/`` images for each split."""
    names = splits[0].names
    first = splits[0]
    use_ids = len(first.category_ids) == len(names) and all(cid > 0 for cid in first.category_ids)
    category_ids = list(first.category_ids) if use_ids else list(range(1, len(names) + 1))
    categories = [{"id": cid, "name": name, "supercategory": ""} for cid, name in zip(category_ids, names)]
    for data in splits:
        _check_same_names(data, names)
        images, annotations = [], []
        numeric = all(_int_id(r.image_id) is not None for r in data.records)
        for index, record in enumerate(_bar(data.records, f"coco {data.split}", progress)):
            image_id = _int_id(record.image_id) if numeric else index + 1
            file_name = record.path.name
            _link_image(record.path, root / data.split / file_name)
            images.append({"id": image_id, "file_name": file_name, "width": record.width, "height": record.height})
            ignore = record.ignore if record.ignore is not None else np.zeros(len(record.boxes), bool)
            for box, class_id, crowd in zip(record.boxes, record.class_ids, ignore):
                x, y, w, h = _coco_bbox(box)
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[int(class_id)],
                    "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(bool(crowd)), "segmentation": [],
                })
        content = {"images": images, "annotations": annotations, "categories": categories}
        atomic_write_text(json.dumps(content), root / "annotations" / f"instances_{data.split}.json")


def _coco_bbox(box: np.ndarray) -> list[float]:
    """``[x, y, w, h]`` such that the reader's ``x + w`` (float64) gives back the float32 box:
    short decimals when they do, else exact doubles (``x2 - x1`` is exact for float32 values)."""
    x1, y1, x2, y2 = (np.float32(v) for v in box)
    short = []
    for low, high in ((x1, x2), (y1, y2)):
        start, size = _decimal32(low), _decimal32(high) - _decimal32(low)
        short += [float(start), float(size)]
    x, w, y, h = short
    if (np.float32(x), np.float32(y), np.float32(x + w), np.float32(y + h)) == (x1, y1, x2, y2):
        return [x, y, w, h]
    return [float(x1), float(y1), float(x2) - float(x1), float(y2) - float(y1)]


def _int_id(image_id) -> int | None:
    if isinstance(image_id, (int, np.integer)):
        return int(image_id)
    if isinstance(image_id, str) and image_id.isdigit():
        return int(image_id)
    return None


def _check_same_names(data: DetectionData, names: list[str]) -> None:
    if data.names != names:
        raise DatasetError(f"{data.root}: split {data.split!r} has different class names from the other splits")


# --- VOC ------------------------------------------------------------------------------------


def write_voc(splits: list[DetectionData], root: Path, progress: bool = True) -> None:
    """Write ``Annotations/``, ``ImageSets/Main/SPLIT.txt``, ``JPEGImages/`` and ``labels.txt``."""
    names = splits[0].names
    atomic_write_text("".join(name + "\n" for name in names), root / "labels.txt")
    for data in splits:
        _check_same_names(data, names)
        ids = []
        for record in _bar(data.records, f"voc {data.split}", progress):
            image_id = record.path.stem
            ids.append(image_id)
            _link_image(record.path, root / "JPEGImages" / record.path.name)
            xml_text = _voc_xml(record, names)
            xml_path = root / "Annotations" / f"{image_id}.xml"
            if xml_path.exists() and xml_path.read_text(encoding="utf-8") != xml_text:
                raise DatasetError(f"{record.path}: two different images are both named {image_id}")
            atomic_write_text(xml_text, xml_path)
        atomic_write_text("".join(i + "\n" for i in ids), root / "ImageSets" / "Main" / f"{data.split}.txt")


def _voc_xml(record, names: list[str]) -> str:
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = "JPEGImages"
    ET.SubElement(annotation, "filename").text = record.path.name
    size = ET.SubElement(annotation, "size")
    ET.SubElement(size, "width").text = str(record.width)
    ET.SubElement(size, "height").text = str(record.height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(annotation, "segmented").text = "0"
    ignore = record.ignore if record.ignore is not None else np.zeros(len(record.boxes), bool)
    for box, class_id, difficult in zip(record.boxes, record.class_ids, ignore):
        obj = ET.SubElement(annotation, "object")
        ET.SubElement(obj, "name").text = names[int(class_id)]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(int(bool(difficult)))
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bndbox, tag).text = _voc_number(value)
    ET.indent(annotation)
    return ET.tostring(annotation, encoding="unicode") + "\n"


def _voc_number(value: float) -> str:
    """``value + 1`` as text that the reader's ``float(text) - 1`` turns back into the same float32."""
    short = _decimal32(value) + 1
    if np.float32(float(short) - VOC_OFFSET) == np.float32(value):
        return _plain(short)
    return _num(float(np.float32(value)) + VOC_OFFSET)  # exact: adding 1 to a float32 in float64


# --- YOLO -----------------------------------------------------------------------------------


def write_yolo(splits: list[DetectionData], root: Path, progress: bool = True) -> None:
    """Write ``images/SPLIT/``, ``labels/SPLIT/*.txt`` and ``data.yaml``."""
    import yaml

    names = splits[0].names
    for data in splits:
        _check_same_names(data, names)
        for record in _bar(data.records, f"yolo {data.split}", progress):
            _link_image(record.path, root / "images" / data.split / record.path.name)
            ignore = record.ignore if record.ignore is not None else np.zeros(len(record.boxes), bool)
            lines = [
                f"{int(class_id)} " + " ".join(_exact_yolo(box, record.width, record.height))
                for box, class_id, skip in zip(record.boxes, record.class_ids, ignore)
                if not skip
            ]
            atomic_write_text("".join(line + "\n" for line in lines),
                              root / "labels" / data.split / f"{record.path.stem}.txt")
    config: dict = {}
    split_names = [data.split for data in splits]
    for key in ("train", "val", "test"):
        matches = [name for name in split_names if name.startswith(key)]
        if len(matches) == 1:
            config[key] = f"images/{matches[0]}"
    config["names"] = list(names)
    atomic_write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), root / "data.yaml")


def _exact_yolo(box: np.ndarray, width: int, height: int) -> list[str]:
    """Normalised (cx, cy, w, h) texts whose decoding gives back ``box`` bit-exactly in float32:
    the fewest significant digits (at least 6) that do, else full doubles nudged by an ulp."""
    target = np.asarray(box, dtype=np.float32)
    values = xyxy_to_yolo(target.astype(np.float64), width, height)[0]
    for digits in range(6, 17):
        texts = [f"{v:.{digits}g}" for v in values]
        decoded = yolo_to_xyxy(np.array([float(t) for t in texts]), width, height)[0].astype(np.float32)
        if np.array_equal(decoded, target):
            return texts
    for _ in range(64):
        decoded = yolo_to_xyxy(values, width, height)[0].astype(np.float32)
        if np.array_equal(decoded, target):
            break
        error = decoded.astype(np.float64) - target.astype(np.float64)
        # d(x1)=d(cx)-d(w)/2, d(x2)=d(cx)+d(w)/2: move cx by the mean error, w by the spread.
        for axis in (0, 1):
            mean = (error[axis] + error[axis + 2]) / 2
            spread = error[axis + 2] - error[axis]
            if mean:
                values[axis] = np.nextafter(values[axis], -np.inf if mean > 0 else np.inf)
            if spread:
                values[axis + 2] = np.nextafter(values[axis + 2], -np.inf if spread > 0 else np.inf)
    return [repr(float(v)) for v in values]
