"""Pascal VOC reader and writer: ``Annotations/ID.xml``, ``ImageSets/Main/SPLIT.txt``, ``JPEGImages/``.

Class names, in this order of precedence: the ``names`` argument; a ``labels.txt`` or
``classes.txt`` in the dataset root (one name per line, in class-id order); otherwise the
``object/name`` values found in all XML files under ``Annotations/``, sorted alphabetically.

Coordinates: VOC stores 1-based pixel coordinates. Like the official YOLOX VOC reader, yoloxkit
subtracts 1 from all four (``x1 = xmin - 1`` ... ``y2 = ymax - 1``), and :func:`write_voc` adds 1
when writing, so a conversion round trip keeps every box exactly (fractional values are kept).
``difficult`` objects are flagged in ``ignore`` (and ignore flags are written as ``difficult``).

``ImageSets`` lists are read by :func:`yoloxkit.text.read_text` (UTF-8, a byte-order mark
dropped); an image id listed twice is a ``duplicate`` error. XML files are decoded as their XML
declaration says; one that does not parse is a ``malformed`` error naming it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ImageReadError
from ..imaging import IMAGE_SUFFIXES, image_size
from ..io import atomic_write_text
from ..names import NAMES_FILES, read_names
from ..text import TextReadError, read_text
from .dataset_format import DatasetFormat, Layout
from .issues import ERROR, DataIssue
from .records import DetectionData, ImageRecord
from .validate import check_box
from .writing import (
    ImageLinker,
    as_linker,
    check_same_names,
    decimal32,
    exact_number,
    ignore_flags,
    plain_decimal,
    progress_bar,
)

__all__ = ["voc_splits", "voc_names", "read_voc", "write_voc", "VOC_OFFSET", "detect_voc", "detect_vocdevkit", "FORMAT"]

VOC_OFFSET = 1.0  # VOC coordinate = yoloxkit coordinate + 1


def _split_dir(root: Path) -> Path:
    return root / "ImageSets" / "Main"


def voc_splits(root: Path) -> list[str]:
    """Split names: the ``ImageSets/Main/*.txt`` files that list image ids (one token per line);
    the per-class files (``dog_train.txt``, two columns) are not splits."""
    splits = []
    for path in sorted(_split_dir(Path(root)).glob("*.txt")):
        first = next((line for line in read_text(path, "VOC ImageSets list").splitlines() if line.strip()), "")
        if len(first.split()) <= 1:
            splits.append(path.stem)
    return splits


def voc_names(root: Path) -> list[str]:
    """Class names of a VOC dataset without a names argument (see the module docstring)."""
    root = Path(root)
    for file_name in NAMES_FILES:
        if (root / file_name).is_file():
            return read_names(root / file_name)  # type: ignore[return-value]
    found: set[str] = set()
    for xml_path in (root / "Annotations").glob("*.xml"):
        try:
            annotation = _xml_root(xml_path)
        except TextReadError:
            continue  # reported when the split that lists it is read
        for obj in annotation.iter("object"):
            name = (obj.findtext("name") or "").strip()
            if name:
                found.add(name)
    if not found:
        raise DatasetError(
            f"{root}: no class names: no object/name in Annotations/*.xml and no labels.txt; pass names"
        )
    return sorted(found)


def _find_image(root: Path, image_id: str, file_name: str | None) -> Path | None:
    image_dir = root / "JPEGImages"
    if file_name and (image_dir / file_name).is_file():
        return image_dir / file_name
    candidate = image_dir / f"{image_id}.jpg"
    if candidate.is_file():
        return candidate
    for suffix in sorted(IMAGE_SUFFIXES):
        candidate = image_dir / f"{image_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _number(obj: ET.Element, tag: str) -> float | None:
    text = obj.findtext(tag)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def read_voc(root: str | Path, split: str, names: list[str] | None = None) -> DetectionData:
    """Read one split of a VOC dataset; problems are collected in ``issues``."""
    root = Path(root)
    issues: list[DataIssue] = []
    split_file, ids = _split_ids(root, split, issues)
    class_names = names if names is not None else voc_names(root)
    class_index = {name: i for i, name in enumerate(class_names)}
    records: list[ImageRecord] = []
    for image_id in ids:
        record = _read_image_annotation(root, image_id, split_file, class_names, class_index, issues)
        if record is not None:
            records.append(record)
    return DetectionData(names=list(class_names), records=records, format="voc", split=split, root=root,
                         issues=issues)


def _split_ids(root: Path, split: str, issues: list[DataIssue]) -> tuple[Path, list[str]]:
    """The split file and the image ids it lists (first token of each line), each once: an id
    listed again is a ``duplicate`` error (its ground truth would count twice)."""
    split_file = _split_dir(root) / f"{split}.txt"
    if not split_file.is_file():
        raise DatasetError(f"{split_file}: split file does not exist")
    first_line: dict[str, int] = {}
    for number, line in enumerate(read_text(split_file, "VOC ImageSets list").splitlines(), start=1):
        if not line.split():
            continue
        image_id = line.split()[0]
        if image_id in first_line:
            issues.append(DataIssue(ERROR, "duplicate", str(split_file), f"line {number}",
                                    f"image id {image_id} is listed again (first at line {first_line[image_id]});"
                                    " each image must be listed once"))
            continue
        first_line[image_id] = number
    if not first_line:
        raise DatasetError(f"{split_file}: split file is empty")
    return split_file, list(first_line)


def _read_image_annotation(root: Path, image_id: str, split_file: Path, class_names: list[str],
                           class_index: dict[str, int], issues: list[DataIssue]) -> ImageRecord | None:
    """The record of ``Annotations/IMAGE_ID.xml``, or ``None`` (with an issue) when the XML, the
    image or (for an image that cannot be read either) its size is missing."""
    xml_path = root / "Annotations" / f"{image_id}.xml"
    file = str(xml_path)
    if not xml_path.is_file():
        issues.append(DataIssue(ERROR, "malformed", file, "",
                                f"annotation file listed in {split_file.name} does not exist"))
        return None
    try:
        annotation = _xml_root(xml_path)
    except TextReadError as exc:
        issues.append(DataIssue(ERROR, "malformed", file, "", exc.reason))
        return None
    image_path = _find_image(root, image_id, (annotation.findtext("filename") or "").strip() or None)
    if image_path is None:
        issues.append(DataIssue(ERROR, "missing_image", file, "filename",
                                f"image {image_id} listed in {split_file} is missing from JPEGImages/"))
        return None
    size = _image_size(annotation, image_path, file, issues)
    if size is None:
        return None
    width, height = int(size[0]), int(size[1])
    boxes, classes, ignore = _objects(annotation, class_names, class_index, file, (width, height), issues)
    return ImageRecord(
        path=image_path,
        width=width,
        height=height,
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4).astype(np.float32),
        class_ids=np.asarray(classes, dtype=np.int64),
        image_id=image_id,
        ignore=np.asarray(ignore, dtype=bool),
    )


def _xml_root(xml_path: Path) -> ET.Element:
    """The root element of an annotation file, decoded as its XML declaration says (without one:
    UTF-8, or UTF-16 after a byte-order mark); :class:`TextReadError` if it is not valid XML."""
    try:
        return ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        reason = f"not valid XML ({exc})"
    except LookupError as exc:  # an encoding the XML declaration names but Python does not know
        reason = f"not valid XML ({exc} in the XML declaration)"
    raise TextReadError(f"{xml_path}: {reason}", reason)


def _image_size(annotation: ET.Element, image_path: Path, file: str,
                issues: list[DataIssue]) -> tuple[float, float] | None:
    """``size/width``, ``size/height``; when missing or invalid, a ``missing_size`` issue and the
    image file's own size (so check-data goes on counting), or ``None`` if that cannot be read."""
    size = annotation.find("size")
    width = _number(size, "width") if size is not None else None
    height = _number(size, "height") if size is not None else None
    if not width or not height or width <= 0 or height <= 0:
        element = "size" if size is None else "size/width, size/height"
        issues.append(DataIssue(ERROR, "missing_size", file, element, "missing or invalid image size element"))
        try:
            return image_size(image_path)
        except ImageReadError:
            return None
    return width, height


def _objects(annotation: ET.Element, class_names: list[str], class_index: dict[str, int], file: str,
             size: tuple[int, int], issues: list[DataIssue]) -> tuple[list[tuple], list[int], list[bool]]:
    """Boxes (xyxy, ``VOC_OFFSET`` taken off), class indices and ``difficult`` flags of the valid objects."""
    boxes, classes, ignore = [], [], []
    for index, obj in enumerate(annotation.iter("object")):
        name = (obj.findtext("name") or "").strip()
        element = f"object[{index}]"
        if name not in class_index:
            issues.append(DataIssue(ERROR, "unknown_class", file, f"{element}/name",
                                    f"class {name!r} is not one of the {len(class_names)} class names"))
            continue
        box = _object_box(obj, f"{element}/bndbox", file, issues)
        if box is None:
            continue
        keep, found = check_box(file, f"{element}/bndbox", box, *size)
        issues.extend(found)
        if not keep:
            continue
        boxes.append(box)
        classes.append(class_index[name])
        difficult = (obj.findtext("difficult") or "0").strip()
        ignore.append(difficult not in ("0", ""))
    return boxes, classes, ignore


def _object_box(obj: ET.Element, element: str, file: str, issues: list[DataIssue]) -> tuple | None:
    """The object's ``bndbox`` less ``VOC_OFFSET``, or ``None`` (with an issue) if missing or inverted."""
    bndbox = obj.find("bndbox")
    values = [_number(bndbox, tag) if bndbox is not None else None for tag in ("xmin", "ymin", "xmax", "ymax")]
    if any(v is None for v in values):
        issues.append(DataIssue(ERROR, "malformed", file, element, "needs numeric xmin, ymin, xmax, ymax"))
        return None
    xmin, ymin, xmax, ymax = values  # type: ignore[misc]
    if xmin > xmax or ymin > ymax:
        issues.append(DataIssue(ERROR, "inverted_box", file, element,
                                f"xmin > xmax or ymin > ymax ({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g})"))
        return None
    return (xmin - VOC_OFFSET, ymin - VOC_OFFSET, xmax - VOC_OFFSET, ymax - VOC_OFFSET)


def write_voc(splits: list[DetectionData], root: Path, progress: bool = True,
              link: ImageLinker | str = "copy") -> None:
    """Write ``Annotations/``, ``ImageSets/Main/SPLIT.txt``, ``JPEGImages/`` and ``labels.txt``."""
    linker = as_linker(link)
    names = splits[0].names
    atomic_write_text("".join(name + "\n" for name in names), root / "labels.txt")
    for data in splits:
        check_same_names(data, names)
        ids = []
        for record in progress_bar(data.records, f"voc {data.split}", progress):
            image_id = record.path.stem
            ids.append(image_id)
            linker(record.path, root / "JPEGImages" / record.path.name)
            xml_text = _voc_xml(record, names)
            xml_path = root / "Annotations" / f"{image_id}.xml"
            if xml_path.exists() and xml_path.read_bytes() != xml_text.encode("utf-8"):
                raise DatasetError(f"{record.path}: two different images are both named {image_id}")
            atomic_write_text(xml_text, xml_path)
        # an image met twice (same file, same boxes) is listed once: the reader refuses repeats
        listed = "".join(i + "\n" for i in dict.fromkeys(ids))
        atomic_write_text(listed, root / "ImageSets" / "Main" / f"{data.split}.txt")


def _voc_xml(record, names: list[str]) -> str:
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = "JPEGImages"
    ET.SubElement(annotation, "filename").text = record.path.name
    size = ET.SubElement(annotation, "size")
    ET.SubElement(size, "width").text = str(record.width)
    ET.SubElement(size, "height").text = str(record.height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(annotation, "segmented").text = "0"
    for box, class_id, difficult in zip(record.boxes, record.class_ids, ignore_flags(record)):
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
    short = decimal32(value) + 1
    if np.float32(float(short) - VOC_OFFSET) == np.float32(value):
        return plain_decimal(short)
    return exact_number(float(np.float32(value)) + VOC_OFFSET)  # exact: adding 1 to a float32 in float64


def _is_voc(path: Path) -> bool:
    return (path / "Annotations").is_dir() and (path / "ImageSets" / "Main").is_dir()


def detect_voc(path: Path) -> Layout | None:
    """``path`` as a VOC layout (a directory with ``Annotations/`` and ``ImageSets/Main/``), else ``None``."""
    return Layout("voc", path) if path.is_dir() and _is_voc(path) else None


def detect_vocdevkit(path: Path) -> Layout | None:
    """A ``VOCdevkit``-style parent holding exactly one VOC directory -> that one's layout;
    several are an error, none is ``None``."""
    nested = sorted(p for p in path.iterdir() if p.is_dir() and _is_voc(p))
    if len(nested) == 1:
        return Layout("voc", nested[0])
    if nested:
        raise DatasetError(
            f"{path}: holds several VOC datasets ({', '.join(p.name for p in nested)}); pass one of them"
        )
    return None


FORMAT = DatasetFormat(
    name="voc",
    hint="VOC (Annotations/, ImageSets/Main/, JPEGImages/)",
    detect=detect_voc,
    splits=lambda layout: (voc_splits(layout.root), {}),
    read=lambda layout, split, names: read_voc(layout.root, split, names),
    write=write_voc,
    detect_parent=detect_vocdevkit,
)
