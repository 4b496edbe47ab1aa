"""COCO-json reader and writer: ``DIR/annotations/instances_SPLIT.json`` with images in ``DIR/SPLIT/``.

Class index i is the i-th entry of the json's full ``categories`` list ordered by id (so a
split that lacks some categories still numbers its classes like the others). Boxes are the json's
``[x, y, w, h]`` turned into xyxy as written (no clipping: training repairs boxes with a counted
warning, ``check-data`` reports them). ``iscrowd`` boxes are kept and flagged in ``ignore``.
:func:`write_coco` writes ``bbox`` values that read back as bit-identical float32 boxes, and
ignore flags as ``iscrowd``.

The file is text as :func:`yoloxkit.text.read_text` accepts (UTF-8, a byte-order mark dropped).
It must have an ``annotations`` list (an image-info file such as ``image_info_test2017.json`` is
refused); an empty one is a warning (every image is background). Image ids, image file names and
annotation ids must be unique: a repeat is a ``duplicate`` error (the first entry is kept).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..io import atomic_write_text
from ..text import read_text
from .dataset_format import DatasetFormat, Layout
from .issues import ERROR, WARNING, DataIssue
from .records import DetectionData, ImageRecord
from .validate import check_box
from .writing import ImageLinker, as_linker, check_same_names, decimal32, ignore_flags, progress_bar

__all__ = ["coco_splits", "coco_annotation_file", "read_coco", "write_coco", "detect_coco", "FORMAT"]

_PREFIX = "instances_"


def coco_splits(root: Path) -> list[str]:
    """Split names of a COCO-layout directory (from ``annotations/instances_SPLIT.json``)."""
    return sorted(p.stem[len(_PREFIX):] for p in (Path(root) / "annotations").glob(_PREFIX + "*.json"))


def coco_annotation_file(root: Path, split: str) -> Path:
    return Path(root) / "annotations" / f"{_PREFIX}{split}.json"


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: annotation file does not exist")
    text = read_text(path, "COCO annotation file")
    if not text.strip():
        raise DatasetError(f"{path}: annotation file is empty")
    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid json ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: expected a json object with images, annotations, categories")
    for key in ("images", "categories"):
        if not isinstance(content.get(key), list):
            raise DatasetError(f"{path}: missing or invalid {key!r} list")
    if not content["categories"]:
        raise DatasetError(f"{path}: 'categories' is empty")
    if "annotations" not in content:
        raise DatasetError(f"{path}: no 'annotations' list: an image-info file has no ground truth to train or"
                           " evaluate on (write \"annotations\": [] if no image has objects)")
    if not isinstance(content["annotations"], list):
        raise DatasetError(f"{path}: 'annotations' is not a list")
    return content


def read_coco(root: str | Path, split: str, names: list[str] | None = None) -> DetectionData:
    """Read one split. ``names``, if given, sets the class order: each category is mapped to the
    class of the same name (a category whose name is not listed is an error)."""
    root = Path(root)
    ann_file = coco_annotation_file(root, split)
    content = _load_json(ann_file)
    file = str(ann_file)
    issues: list[DataIssue] = []
    cat_names, cat_ids = _categories(content, file)
    class_names, category_ids, cat_to_class = _class_mapping(cat_names, cat_ids, names, file, issues)
    _duplicates(content, file, issues)
    images, order = _image_entries(content, file, issues)
    known = None if names is None else set(cat_ids)
    if not content["annotations"]:
        issues.append(DataIssue(WARNING, "no_boxes", file, "annotations",
                                "empty: every image is background (no boxes to train on or to evaluate)"))
    _add_annotations(content["annotations"], images, cat_to_class, known, file, issues)
    records = _records(images, order, root / split, ann_file.name, issues)
    return DetectionData(
        names=class_names,
        records=records,
        format="coco",
        split=split,
        root=root,
        annotation_file=ann_file,
        category_ids=category_ids,
        issues=issues,
    )


def _categories(content: dict, file: str) -> tuple[list[str], list[int]]:
    """Category names and ids, ordered by id."""
    try:
        categories = sorted(content["categories"], key=lambda c: int(c["id"]))
        return [str(c["name"]) for c in categories], [int(c["id"]) for c in categories]
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{file}: categories: every entry needs an integer 'id' and a 'name'") from None


def _class_mapping(cat_names: list[str], cat_ids: list[int], names: list[str] | None, file: str,
                   issues: list[DataIssue]) -> tuple[list[str], list[int], dict[int, int]]:
    """``(class names, category id per class (-1: none), category id -> class index)``; with
    ``names``, a category whose name is not listed is an ``unknown_class`` issue."""
    if names is None:
        return cat_names, cat_ids, {cid: i for i, cid in enumerate(cat_ids)}
    class_names = list(names)
    by_name = {name: cid for name, cid in zip(cat_names, cat_ids)}
    position = {name: i for i, name in enumerate(class_names)}
    cat_to_class = {}
    for name, cid in zip(cat_names, cat_ids):
        if name in position:
            cat_to_class[cid] = position[name]
        else:
            issues.append(DataIssue(ERROR, "unknown_class", file, f"categories id={cid}",
                                    f"category {name!r} is not in the given class names"))
    return class_names, [by_name.get(name, -1) for name in class_names], cat_to_class


def _repeats(entries: list, key: str) -> dict[object, list[int]]:
    """``value -> indices`` of the ``key`` values (integers or strings) that several entries hold."""
    where: dict[object, list[int]] = {}
    for index, entry in enumerate(entries):
        value = entry.get(key) if isinstance(entry, dict) else None
        if _valid_id(value):
            where.setdefault(value, []).append(index)
    return {value: indices for value, indices in where.items() if len(indices) > 1}


def _duplicates(content: dict, file: str, issues: list[DataIssue]) -> None:
    """A ``duplicate`` error for each image id, image file name and annotation id held by more than
    one entry (ground truth would count twice, or an image would take another's boxes)."""
    images, annotations = content["images"], content["annotations"]
    for image_id, where in _repeats(images, "id").items():
        issues.append(DataIssue(ERROR, "duplicate", file, f"images[{where[1]}]",
                                f"image id {image_id!r} appears {len(where)} times (first duplicate: file "
                                f"{images[where[1]].get('file_name')}); ids must be unique"))
    for name, where in _repeats(images, "file_name").items():
        ids = list(dict.fromkeys(images[index].get("id") for index in where))
        if len(ids) > 1:  # one id listed twice is reported above
            issues.append(DataIssue(ERROR, "duplicate", file, f"images[{where[1]}]",
                                    f"file {name} appears {len(where)} times (image ids "
                                    f"{', '.join(map(repr, ids))}); file names must be unique"))
    for ann_id, where in _repeats(annotations, "id").items():
        issues.append(DataIssue(ERROR, "duplicate", file, f"annotations[{where[1]}]",
                                f"annotation id {ann_id!r} appears {len(where)} times; ids must be unique"))


def _valid_id(value: object) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _image_entries(content: dict, file: str, issues: list[DataIssue]) -> tuple[dict[object, dict], list[object]]:
    """The usable ``images`` entries by id (file name, size, empty box lists) and their order; of
    entries sharing an id or a file name (:func:`_duplicates` reports them) the first is kept."""
    images: dict[object, dict] = {}
    order: list[object] = []
    seen_ids: set[object] = set()
    seen_files: set[str] = set()
    for index, image in enumerate(content["images"]):
        try:
            image_id = image["id"]
            file_name = str(image["file_name"])
        except (KeyError, TypeError):
            issues.append(DataIssue(ERROR, "malformed", file, f"images[{index}]", "needs 'id' and 'file_name'"))
            continue
        if not _valid_id(image_id):
            issues.append(DataIssue(ERROR, "malformed", file, f"images[{index}]", "'id' must be an integer or a string"))
            continue
        if image_id in seen_ids or file_name in seen_files:
            continue
        seen_ids.add(image_id)
        seen_files.add(file_name)
        width, height = image.get("width"), image.get("height")
        if not isinstance(width, (int, float)) or not isinstance(height, (int, float)) or width <= 0 or height <= 0:
            issues.append(DataIssue(ERROR, "missing_size", file, f"images id={image_id}",
                                    f"{file_name} has no valid 'width'/'height'"))
            continue
        images[image_id] = {"file_name": file_name, "width": int(width), "height": int(height),
                            "boxes": [], "classes": [], "ignore": []}
        order.append(image_id)
    return images, order


def _add_annotations(annotations: list, images: dict[object, dict], cat_to_class: dict[int, int],
                     known_ids: set[int] | None, file: str, issues: list[DataIssue]) -> None:
    """Append each valid annotation's xyxy box, class and ``iscrowd`` flag to its image entry.
    ``known_ids``: with class names given, the json's category ids (one left out on purpose is
    skipped silently); ``None`` when every category is a class."""
    for index, ann in enumerate(annotations):
        element = f"annotations id={ann.get('id', index)}" if isinstance(ann, dict) else f"annotations[{index}]"
        try:
            image = images.get(ann["image_id"])
            category = int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError):
            issues.append(DataIssue(ERROR, "malformed", file, element,
                                    "needs 'image_id', 'category_id' and a 4-number 'bbox'"))
            continue
        if image is None:
            if ann["image_id"] not in images:
                issues.append(DataIssue(ERROR, "malformed", file, element,
                                        f"image_id {ann['image_id']} is not in 'images'"))
            continue
        if category not in cat_to_class:
            if known_ids is None or category not in known_ids:
                issues.append(DataIssue(ERROR, "unknown_class", file, element,
                                        f"category_id {category} is not in 'categories'"))
            continue
        box = (x, y, x + w, y + h)
        keep, found = check_box(file, f"{element} ({image['file_name']})", box, image["width"], image["height"])
        issues.extend(found)
        if keep:
            image["boxes"].append(box)
            image["classes"].append(cat_to_class[category])
            image["ignore"].append(bool(ann.get("iscrowd", 0)))


def _records(images: dict[object, dict], order: list[object], image_dir: Path, ann_name: str,
             issues: list[DataIssue]) -> list[ImageRecord]:
    """One :class:`ImageRecord` per image entry whose file exists (else a ``missing_image`` issue)."""
    records: list[ImageRecord] = []
    for image_id in order:
        image = images[image_id]
        path = image_dir / image["file_name"]
        if not path.is_file():
            issues.append(DataIssue(ERROR, "missing_image", str(path), "",
                                    f"image listed in {ann_name} (id={image_id}) does not exist"))
            continue
        records.append(
            ImageRecord(
                path=path,
                width=image["width"],
                height=image["height"],
                boxes=np.asarray(image["boxes"], dtype=np.float64).reshape(-1, 4).astype(np.float32),
                class_ids=np.asarray(image["classes"], dtype=np.int64),
                image_id=image_id,
                ignore=np.asarray(image["ignore"], dtype=bool),
            )
        )
    return records


def write_coco(splits: list[DetectionData], root: Path, progress: bool = True,
               link: ImageLinker | str = "copy") -> None:
    """Write ``annotations/instances_SPLIT.json`` and ``SPLIT/`` images for each split."""
    linker = as_linker(link)
    names = splits[0].names
    first = splits[0]
    use_ids = len(first.category_ids) == len(names) and all(cid > 0 for cid in first.category_ids)
    category_ids = list(first.category_ids) if use_ids else list(range(1, len(names) + 1))
    categories = [{"id": cid, "name": name, "supercategory": ""} for cid, name in zip(category_ids, names)]
    for data in splits:
        check_same_names(data, names)
        images, annotations = [], []
        ids = [_int_id(r.image_id) for r in data.records]
        if None in ids or len(set(ids)) < len(ids):  # the records' ids are kept only if integers, each once
            ids = list(range(1, len(data.records) + 1))
        for index, record in enumerate(progress_bar(data.records, f"coco {data.split}", progress)):
            image_id = ids[index]
            file_name = record.path.name
            linker(record.path, root / data.split / file_name)
            images.append({"id": image_id, "file_name": file_name, "width": record.width, "height": record.height})
            for box, class_id, crowd in zip(record.boxes, record.class_ids, ignore_flags(record)):
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
        start, size = decimal32(low), decimal32(high) - decimal32(low)
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


def detect_coco(path: Path) -> Layout | None:
    """``path`` as a COCO layout (a directory holding ``annotations/instances_*.json``), else
    ``None``; a json file is an error that names the directory to pass instead."""
    if path.is_file():
        if path.suffix.lower() == ".json":
            raise DatasetError(
                f"{path}: pass the dataset directory (the one holding annotations/), not the json file"
            )
        return None
    return Layout("coco", path) if any((path / "annotations").glob(_PREFIX + "*.json")) else None


FORMAT = DatasetFormat(
    name="coco",
    hint="COCO (annotations/instances_SPLIT.json)",
    detect=detect_coco,
    splits=lambda layout: (coco_splits(layout.root), {}),
    read=lambda layout, split, names: read_coco(layout.root, split, names),
    write=write_coco,
)
