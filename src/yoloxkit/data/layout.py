"""Which dataset format a path holds, and which split a ``--split`` argument means.

Layouts are the entries of :data:`.formats.DATASET_FORMATS`, detected in that order: COCO
(``DIR/annotations/instances_SPLIT.json``, :mod:`.coco`), Pascal VOC (``DIR/Annotations/``,
``DIR/ImageSets/Main/``, ``DIR/JPEGImages/``, or a ``VOCdevkit``-style parent holding exactly one
such directory, :mod:`.voc`) and YOLO-txt (a data YAML, or ``DIR/images/SPLIT/`` with
``DIR/labels/SPLIT/``, :mod:`.yolo`). Each format module's docstring describes its layout.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError
from .dataset_format import Layout
from .formats import all_formats

__all__ = ["Layout", "detect_layout", "resolve_split", "COCO", "VOC", "YOLO"]

# The built-in format names, kept for callers of this module; the formats themselves are the
# entries of :data:`.formats.DATASET_FORMATS`.
COCO = "coco"
VOC = "voc"
YOLO = "yolo"


def detect_layout(path: str | os.PathLike) -> Layout:
    """Detect the layout of a dataset directory or data YAML; :class:`DatasetError` if unknown.

    Each registered format's ``detect`` is tried in registry order, then each one's
    ``detect_parent`` (a folder holding one dataset, such as a ``VOCdevkit``)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: dataset path does not exist")
    for entry in all_formats():
        if (layout := entry.detect(path)) is not None:
            return layout
    if path.is_file():
        raise DatasetError(f"{path}: not a dataset directory or a data YAML")
    for entry in all_formats():
        if entry.detect_parent is not None and (layout := entry.detect_parent(path)) is not None:
            return layout
    hints = [entry.hint for entry in all_formats()]
    expected = ", ".join(hints[:-1]) + " or " + hints[-1] if len(hints) > 1 else hints[0]
    raise DatasetError(f"{path}: unknown dataset layout; expected {expected}")


def resolve_split(
    available: list[str],
    split: str | None,
    default_prefix: str,
    source: str | os.PathLike,
    aliases: dict[str, str] | None = None,
) -> str:
    """Pick one of ``available`` splits.

    ``split`` is an exact split name (or an alias such as a YOLO YAML key) or a unique prefix of
    one. With no ``split``, the unique split starting with ``default_prefix`` is chosen (an alias
    named exactly ``default_prefix`` wins). Anything else is a :class:`DatasetError` listing the
    available splits.
    """
    aliases = aliases or {}
    listing = ", ".join(sorted(available)) or "none"
    if split is None:
        if default_prefix in aliases:
            return aliases[default_prefix]
        matches = [name for name in available if name.startswith(default_prefix)]
        if len(matches) == 1:
            return matches[0]
        reason = "no split" if not matches else "more than one split"
        raise DatasetError(
            f"{source}: {reason} starts with {default_prefix!r}; choose one with --split "
            f"(available splits: {listing})"
        )
    if split in available:
        return split
    if split in aliases:
        return aliases[split]
    matches = [name for name in available if name.startswith(split)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DatasetError(f"{source}: no split {split!r} (available splits: {listing})")
    raise DatasetError(
        f"{source}: split prefix {split!r} is ambiguous, it matches {', '.join(sorted(matches))}"
    )
