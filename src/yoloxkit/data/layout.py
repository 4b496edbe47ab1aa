"""Which dataset format a path holds, and which split a ``--split`` argument means.

Layouts (detected in this order):

- COCO: ``DIR/annotations/instances_SPLIT.json`` with images in ``DIR/SPLIT/``.
- Pascal VOC: ``DIR/Annotations/*.xml``, ``DIR/ImageSets/Main/SPLIT.txt``, ``DIR/JPEGImages/``
  (or a ``VOCdevkit``-style parent holding exactly one such directory).
- YOLO-txt: a data YAML (``path``, ``train``, ``val``, ``names``), or a directory holding
  ``images/SPLIT/`` and ``labels/SPLIT/`` (names from a ``*.yaml`` beside them, a ``classes.txt``
  / ``labels.txt``, or the ``names`` argument).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

__all__ = ["Layout", "detect_layout", "resolve_split", "COCO", "VOC", "YOLO"]

COCO = "coco"
VOC = "voc"
YOLO = "yolo"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Layout:
    """A detected dataset: its format, its root directory, and the data YAML if one was given."""

    format: str
    root: Path
    yaml_file: Path | None = None


def detect_layout(path: str | os.PathLike) -> Layout:
    """Detect the layout of a dataset directory or data YAML; :class:`DatasetError` if unknown."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: dataset path does not exist")
    if path.is_file():
        if path.suffix.lower() in YAML_SUFFIXES:
            return Layout(YOLO, path.parent, path)
        if path.suffix.lower() == ".json":
            raise DatasetError(
                f"{path}: pass the dataset directory (the one holding annotations/), not the json file"
            )
        raise DatasetError(f"{path}: not a dataset directory or a data YAML")
    if any((path / "annotations").glob("instances_*.json")):
        return Layout(COCO, path)
    if _is_voc(path):
        return Layout(VOC, path)
    if (path / "images").is_dir():
        yamls = sorted(p for p in path.iterdir() if p.suffix.lower() in YAML_SUFFIXES and p.is_file())
        return Layout(YOLO, path, yamls[0] if len(yamls) == 1 else None)
    # a VOCdevkit-style parent: VOCdevkit/VOC2007/{Annotations,ImageSets,JPEGImages}
    nested = sorted(p for p in path.iterdir() if p.is_dir() and _is_voc(p))
    if len(nested) == 1:
        return Layout(VOC, nested[0])
    if nested:
        raise DatasetError(
            f"{path}: holds several VOC datasets ({', '.join(p.name for p in nested)}); pass one of them"
        )
    raise DatasetError(
        f"{path}: unknown dataset layout; expected COCO (annotations/instances_SPLIT.json), "
        "VOC (Annotations/, ImageSets/Main/, JPEGImages/) or YOLO (images/SPLIT/, labels/SPLIT/ or a data YAML)"
    )


def _is_voc(path: Path) -> bool:
    return (path / "Annotations").is_dir() and (path / "ImageSets" / "Main").is_dir()


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
