"""The dataset-format registry: every format :mod:`yoloxkit.data` reads and writes.

Adding a format touches two places: its own module (reader, writer, ``detect`` and a ``FORMAT``
:class:`~.dataset_format.DatasetFormat` entry at its end, like :mod:`.coco`) and one line of
:data:`DATASET_FORMATS` here. Layout detection, loading, converting and the
``convert-dataset --to`` choices all read this tuple.
"""

from __future__ import annotations

from . import coco, voc, yolo
from .dataset_format import DatasetFormat

__all__ = ["DATASET_FORMATS", "all_formats", "format_names", "dataset_format"]

# In the order layouts are tried in (see :func:`.layout.detect_layout`).
DATASET_FORMATS: tuple[DatasetFormat, ...] = (coco.FORMAT, voc.FORMAT, yolo.FORMAT)


def all_formats() -> tuple[DatasetFormat, ...]:
    """The registered formats, in detection order (read at each call, so a test may patch
    :data:`DATASET_FORMATS`)."""
    return DATASET_FORMATS


def format_names() -> tuple[str, ...]:
    """The registered format names, in detection order (``("coco", "voc", "yolo")``)."""
    return tuple(f.name for f in all_formats())


def dataset_format(name: str) -> DatasetFormat:
    """The registered format called ``name``; :class:`KeyError` if there is none."""
    for entry in all_formats():
        if entry.name == name:
            return entry
    raise KeyError(f"unknown dataset format {name!r}; registered: {', '.join(format_names())}")
