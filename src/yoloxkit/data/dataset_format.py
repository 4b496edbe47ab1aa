"""What a dataset format is to the rest of :mod:`yoloxkit.data`: a :class:`DatasetFormat` entry.

Each format module (:mod:`.coco`, :mod:`.voc`, :mod:`.yolo`) ends with one ``FORMAT`` entry;
:mod:`.formats` lists them in the order layouts are tried in. Layout detection
(:func:`.layout.detect_layout`), loading (:func:`.load.load_dataset`), converting
(:func:`.convert.convert_dataset`) and the ``convert-dataset --to`` choices all come from there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

from .records import DetectionData

__all__ = ["Layout", "DatasetFormat", "DatasetWriter"]


@dataclass(frozen=True)
class Layout:
    """A detected dataset: its format, its root directory, and the data YAML if one was given."""

    format: str
    root: Path
    yaml_file: Path | None = None


class DatasetWriter(Protocol):
    """Writes every split of a dataset under ``root`` (the same class names in each split)."""

    def __call__(self, splits: list[DetectionData], root: Path, progress: bool = ..., link=...) -> None: ...


@dataclass(frozen=True)
class DatasetFormat:
    """One dataset format: how a folder is recognised, how its splits are listed and read, how
    splits are written.

    Attributes:
        name: the format's name (``Layout.format``, ``DetectionData.format``, ``--to`` choice).
        hint: how its layout looks, for the "unknown dataset layout" message.
        detect: a path (directory or file) -> its :class:`Layout` if it holds this format, else
            ``None``; may raise :class:`~yoloxkit.errors.DatasetError` for a near miss.
        splits: a :class:`Layout` -> (split names, aliases that also name splits).
        read: ``(layout, split, names)`` -> the split's :class:`DetectionData`, problems in
            ``issues``; ``names`` (or ``None``) are the class names to use.
        write: a :class:`DatasetWriter`.
        detect_parent: tried after every format's ``detect`` failed: a folder holding one dataset
            of this format (e.g. a ``VOCdevkit``) -> its :class:`Layout`, else ``None``.
    """

    name: str
    hint: str
    detect: Callable[[Path], Optional[Layout]]
    splits: Callable[[Layout], "tuple[list[str], dict[str, str]]"]
    read: Callable[[Layout, str, Optional[list]], DetectionData]
    write: DatasetWriter
    detect_parent: Optional[Callable[[Path], Optional[Layout]]] = None

    def layout(self, root: str | os.PathLike, yaml_file: Path | None = None) -> Layout:
        """A :class:`Layout` of this format at ``root``."""
        return Layout(self.name, Path(root), yaml_file)
