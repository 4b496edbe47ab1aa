"""Reading one split of any dataset layout, and listing a dataset's splits."""

from __future__ import annotations

import os

from ..names import NamesArg, read_names
from .formats import dataset_format
from .issues import raise_first_error
from .layout import Layout, detect_layout, resolve_split
from .records import DetectionData

__all__ = ["load_dataset", "list_splits", "layout_splits"]


def list_splits(path: str | os.PathLike) -> list[str]:
    """The split names of a dataset directory or data YAML."""
    return layout_splits(detect_layout(path))[0]


def layout_splits(layout: Layout) -> tuple[list[str], dict[str, str]]:
    """The split names of ``layout`` and the aliases that also name them (YOLO data YAML keys)."""
    return dataset_format(layout.format).splits(layout)


def load_dataset(
    path: str | os.PathLike,
    split: str | None = None,
    default_prefix: str = "val",
    names: NamesArg = None,
    strict: bool = True,
) -> DetectionData:
    """Read one split of a COCO, VOC or YOLO-txt dataset (any format of :mod:`.formats`).

    Args:
        path: dataset directory (layout auto-detected) or a YOLO data YAML.
        split: exact split name or unique prefix; ``None`` picks the unique split starting with
            ``default_prefix`` ("train" for training, "val" for evaluation).
        names: class names (list, comma-separated string, or a ``.txt``/``.json``/``.yaml`` file).
            For VOC and YOLO they define the classes; for COCO they set the class order, matched
            by name.
        strict: raise :class:`~yoloxkit.errors.DatasetError` on the first error found (unknown
            class, missing image, missing size, inverted box...). With ``strict=False`` the
            problems are only collected in ``DetectionData.issues`` (``check-data`` uses this).
    """
    layout = detect_layout(path)
    available, aliases = layout_splits(layout)
    source = layout.yaml_file or layout.root
    chosen = resolve_split(available, split, default_prefix, source, aliases)
    data = dataset_format(layout.format).read(layout, chosen, read_names(names))
    if strict:
        raise_first_error(data.issues)
    return data
