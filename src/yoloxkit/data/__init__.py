"""Datasets (COCO json, Pascal VOC, YOLO-txt), augmentation and the training data pipeline.

``load_dataset(path, split)`` reads any of the three layouts into a :class:`DetectionData`
(see :mod:`yoloxkit.data.layout` for how layouts and splits are recognised).
"""

from __future__ import annotations

import os

from .issues import DataIssue, raise_first_error
from .layout import COCO, VOC, Layout, detect_layout, resolve_split
from .names import NamesArg, read_names
from .records import DetectionData, ImageRecord

__all__ = [
    "load_dataset",
    "list_splits",
    "detect_layout",
    "resolve_split",
    "DetectionData",
    "ImageRecord",
    "DataIssue",
    "Layout",
]


def list_splits(path: str | os.PathLike) -> list[str]:
    """The split names of a dataset directory or data YAML."""
    layout = detect_layout(path)
    return _splits(layout)[0]


def _splits(layout: Layout) -> tuple[list[str], dict[str, str]]:
    if layout.format == COCO:
        from .coco import coco_splits

        return coco_splits(layout.root), {}
    if layout.format == VOC:
        from .voc import voc_splits

        return voc_splits(layout.root), {}
    from .yolo import yolo_splits

    return yolo_splits(layout)


def load_dataset(
    path: str | os.PathLike,
    split: str | None = None,
    default_prefix: str = "val",
    names: NamesArg = None,
    strict: bool = True,
) -> DetectionData:
    """Read one split of a COCO, VOC or YOLO-txt dataset.

    Args:
        path: dataset directory (layout auto-detected) or a YOLO data YAML.
        split: exact split name or unique prefix; ``None`` picks the unique split starting with
            ``default_prefix`` ("train" for training, "val" for evaluation).
        names: class names (list, comma-separated string, or a ``.txt``/``.yaml`` file). For VOC
            and YOLO they define the classes; for COCO they set the class order, matched by name.
        strict: raise :class:`~yoloxkit.errors.DatasetError` on the first error found (unknown
            class, missing image, missing size, inverted box...). With ``strict=False`` the
            problems are only collected in ``DetectionData.issues`` (``check-data`` uses this).
    """
    layout = detect_layout(path)
    available, aliases = _splits(layout)
    source = layout.yaml_file or layout.root
    chosen = resolve_split(available, split, default_prefix, source, aliases)
    class_names = read_names(names)
    if layout.format == COCO:
        from .coco import read_coco

        data = read_coco(layout.root, chosen, class_names)
    elif layout.format == VOC:
        from .voc import read_voc

        data = read_voc(layout.root, chosen, class_names)
    else:
        from .yolo import read_yolo

        data = read_yolo(layout, chosen, class_names)
    if strict:
        raise_first_error(data.issues)
    return data
