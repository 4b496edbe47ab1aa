"""YOLO-txt reader and writer: ``images/SPLIT/*.jpg`` with ``labels/SPLIT/*.txt`` lines ``cls cx cy w h``
(normalised to the image size), class names in a data YAML (the usual Ultralytics shape)::

    path: .            # optional; relative to the YAML's directory (default: that directory)
    train: images/train2017
    val: images/val2017
    names: [person, bicycle, ...]   # or {0: person, 1: bicycle, ...}

Split names are the directory (or list file) names, so ``--split val2017`` means the same split
as in the COCO and VOC copies of a dataset; the YAML keys (``train``, ``val``, ``test``) also
work as split names. A directory without a YAML takes its names from ``classes.txt`` /
``labels.txt`` or the ``names`` argument. The label file of ``.../images/X/a.jpg`` is
``.../labels/X/a.txt``; a missing or empty label file means an image without objects. Every text
file is read by :func:`yoloxkit.text.read_text` (UTF-8, a byte-order mark dropped); a label file
that is not text is a ``not_text`` error.

:func:`write_yolo` writes full-precision normalised values (reading them back gives bit-identical
float32 boxes) and a ``data.yaml``. YOLO-txt has no ignore flag, so ignored boxes are left out of
the labels (as Ultralytics' own converters do) rather than turned into ordinary objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ImageReadError
from ..imaging import image_size, is_image_file, list_images
from ..io import atomic_write_text
from ..names import NAMES_FILES, names_from_yaml_value, read_names
from ..text import TextReadError, read_text
from .dataset_format import DatasetFormat, Layout
from .issues import ERROR, DataIssue
from .records import DetectionData, ImageRecord
from .validate import check_box
from .writing import ImageLinker, as_linker, check_same_names, ignore_flags, progress_bar

__all__ = ["yolo_splits", "read_yolo", "write_yolo", "yolo_to_xyxy", "xyxy_to_yolo", "label_path_for", "detect_yolo",
           "FORMAT"]

YAML_SUFFIXES = (".yaml", ".yml")

_SPLIT_KEYS = ("train", "val", "test")


@dataclass
class _YoloSource:
    root: Path
    splits: dict[str, list[Path]]
    aliases: dict[str, str]
    names: list[str] | None
    origin: Path


def _load_yaml(path: Path) -> dict:
    import yaml

    try:
        config = yaml.safe_load(read_text(path, "data YAML"))
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise DatasetError(f"{path}: expected a mapping with path, train, val, names")
    return config


def _source(layout: Layout) -> _YoloSource:
    root = layout.root
    splits: dict[str, list[Path]] = {}
    aliases: dict[str, str] = {}
    names = None
    origin = layout.yaml_file or layout.root
    if layout.yaml_file is not None:
        config = _load_yaml(layout.yaml_file)
        if config.get("path"):
            declared = Path(str(config["path"]))
            if declared.is_absolute():
                root = declared
            elif (layout.yaml_file.parent / declared).is_dir():
                root = layout.yaml_file.parent / declared
            else:
                root = declared
        if not root.is_dir():
            raise DatasetError(f"{layout.yaml_file}: path: dataset directory {root} does not exist")
        if "names" in config:
            names = names_from_yaml_value(config["names"], f"{layout.yaml_file}")
        for key, value in config.items():
            if key not in _SPLIT_KEYS or not value:
                continue
            entries = value if isinstance(value, list) else [value]
            paths = [Path(str(entry)) if Path(str(entry)).is_absolute() else root / str(entry) for entry in entries]
            for path in paths:
                if not path.exists():
                    raise DatasetError(f"{layout.yaml_file}: {key}: {path} does not exist")
            split_name = paths[0].stem
            splits.setdefault(split_name, paths)
            aliases[key] = split_name
    images_dir = root / "images"
    if images_dir.is_dir():
        for sub in sorted(images_dir.iterdir()):
            if sub.is_dir():
                splits.setdefault(sub.name, [sub])
    if not splits:
        raise DatasetError(f"{origin}: no splits: expected images/SPLIT/ directories or train/val entries")
    if names is None:
        for file_name in NAMES_FILES:
            if (root / file_name).is_file():
                names = read_names(root / file_name)
                break
    return _YoloSource(root, splits, aliases, names, origin)


def yolo_splits(layout: Layout) -> tuple[list[str], dict[str, str]]:
    """Split names and YAML-key aliases of a YOLO dataset."""
    source = _source(layout)
    return sorted(source.splits), source.aliases


def label_path_for(image_path: Path) -> Path:
    """``.../images/X/a.jpg`` -> ``.../labels/X/a.txt`` (the last ``images`` component is swapped)."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def yolo_to_xyxy(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised ``[N, 4]`` (cx, cy, w, h) -> ``[N, 4]`` xyxy pixels, computed in float64."""
    values = np.asarray(values, dtype=np.float64).reshape(-1, 4)
    cx, cy, w, h = values.T
    return np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], 1)


def xyxy_to_yolo(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """``[N, 4]`` xyxy pixels -> normalised (cx, cy, w, h), float64 (inverse of :func:`yolo_to_xyxy`)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = boxes.T
    return np.stack([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height], 1)


def _image_paths(entries: list[Path], root: Path) -> list[Path]:
    paths: list[Path] = []
    for entry in entries:
        if entry.is_dir():
            paths.extend(list_images(entry))
        elif entry.suffix.lower() == ".txt":
            for line in read_text(entry, "YOLO image list file").splitlines():
                line = line.strip()
                if line:
                    path = Path(line)
                    paths.append(path if path.is_absolute() else (entry.parent / path if line.startswith(".") else root / path))
        elif is_image_file(entry):
            paths.append(entry)
    return paths


def read_yolo(layout: Layout, split: str, names: list[str] | None = None) -> DetectionData:
    """Read one split of a YOLO-txt dataset; problems are collected in ``issues``."""
    source = _source(layout)
    class_names = names if names is not None else source.names
    if class_names is None:
        raise DatasetError(f"{source.origin}: no class names: add a data YAML with names, a classes.txt, or pass names")
    issues: list[DataIssue] = []
    records: list[ImageRecord] = []
    image_paths = _image_paths(source.splits[split], source.root)
    if not image_paths:
        raise DatasetError(f"{source.origin}: split {split!r} has no images")
    listed: set[Path] = set()
    for image_path in image_paths:
        if image_path in listed:
            issues.append(DataIssue(ERROR, "duplicate", str(image_path), "",
                                    f"listed again in split {split!r}; each image must be listed once"))
            continue
        listed.add(image_path)
        if not image_path.is_file():
            issues.append(DataIssue(ERROR, "missing_image", str(image_path), "", "image file does not exist"))
            continue
        try:
            width, height = image_size(image_path)
        except ImageReadError as exc:
            issues.append(DataIssue(ERROR, "corrupt_image", str(image_path), "", str(exc)))
            continue
        boxes, classes = _read_labels(label_path_for(image_path), len(class_names), width, height, issues)
        records.append(
            ImageRecord(
                path=image_path,
                width=width,
                height=height,
                boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4).astype(np.float32),
                class_ids=np.asarray(classes, dtype=np.int64),
                image_id=image_path.stem,
                ignore=np.zeros(len(boxes), dtype=bool),
            )
        )
    return DetectionData(names=list(class_names), records=records, format="yolo", split=split,
                         root=source.root, issues=issues)


def _read_labels(label_path: Path, num_classes: int, width: int, height: int,
                 issues: list[DataIssue]) -> tuple[list[tuple], list[int]]:
    """xyxy pixel boxes and class ids of the valid lines of ``label_path`` (none if it is missing;
    none, with a ``not_text`` issue, if it is not text)."""
    file = str(label_path)
    boxes, classes = [], []
    try:
        lines = read_text(label_path, "YOLO label file").splitlines() if label_path.is_file() else []
    except TextReadError as exc:
        issues.append(DataIssue(ERROR, "not_text", file, "", exc.reason))
        return boxes, classes
    for number, line in enumerate(lines, start=1):
        if not line.split():
            continue
        element = f"line {number}"
        parsed = _parse_label_line(line, num_classes, file, element, issues)
        if parsed is None:
            continue
        class_id, values = parsed
        box = tuple(float(v) for v in yolo_to_xyxy(np.asarray(values), width, height)[0])
        keep, found = check_box(file, element, box, width, height)  # type: ignore[arg-type]
        issues.extend(found)
        if keep:
            boxes.append(box)
            classes.append(class_id)
    return boxes, classes


def _parse_label_line(line: str, num_classes: int, file: str, element: str,
                      issues: list[DataIssue]) -> tuple[int, list[float]] | None:
    """``(class id, [cx, cy, w, h])`` of one label line, or ``None`` with an issue."""
    fields = line.split()
    try:
        class_id = int(fields[0])
        values = [float(v) for v in fields[1:]]
    except ValueError:
        issues.append(DataIssue(ERROR, "malformed", file, element, f"expected 'class cx cy w h', got {line.strip()!r}"))
        return None
    if len(values) != 4:
        issues.append(DataIssue(ERROR, "malformed", file, element,
                                f"expected 5 values 'class cx cy w h', got {len(fields)}"))
        return None
    if not 0 <= class_id < num_classes:
        issues.append(DataIssue(ERROR, "unknown_class", file, element,
                                f"class id {class_id} is outside the {num_classes} class names"))
        return None
    if values[2] < 0 or values[3] < 0:
        issues.append(DataIssue(ERROR, "inverted_box", file, element, "negative width or height"))
        return None
    return class_id, values


def write_yolo(splits: list[DetectionData], root: Path, progress: bool = True,
               link: ImageLinker | str = "copy") -> None:
    """Write ``images/SPLIT/``, ``labels/SPLIT/*.txt`` and ``data.yaml``."""
    import yaml

    linker = as_linker(link)
    names = splits[0].names
    for data in splits:
        check_same_names(data, names)
        for record in progress_bar(data.records, f"yolo {data.split}", progress):
            linker(record.path, root / "images" / data.split / record.path.name)
            ignore = ignore_flags(record)
            lines = [
                f"{int(class_id)} " + " ".join(_exact_yolo(box, record.width, record.height))
                for box, class_id, skip in zip(record.boxes, record.class_ids, ignore)
                if not skip
            ]
            atomic_write_text("".join(line + "\n" for line in lines),
                              root / "labels" / data.split / f"{record.path.stem}.txt")
    config: dict = {}
    split_names = [data.split for data in splits]
    for key in _SPLIT_KEYS:
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


def detect_yolo(path: Path) -> Layout | None:
    """``path`` as a YOLO layout: a data YAML, or a directory holding ``images/`` (with the one
    ``*.yaml`` beside it, if there is exactly one); else ``None``."""
    if path.is_file():
        return Layout("yolo", path.parent, path) if path.suffix.lower() in YAML_SUFFIXES else None
    if not (path / "images").is_dir():
        return None
    yamls = sorted(p for p in path.iterdir() if p.suffix.lower() in YAML_SUFFIXES and p.is_file())
    return Layout("yolo", path, yamls[0] if len(yamls) == 1 else None)


FORMAT = DatasetFormat(
    name="yolo",
    hint="YOLO (images/SPLIT/, labels/SPLIT/ or a data YAML)",
    detect=detect_yolo,
    splits=yolo_splits,
    read=read_yolo,
    write=write_yolo,
)
