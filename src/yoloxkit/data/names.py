"""Class-name lists given by the user or found beside the data (never shipped in the package)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

from ..errors import DatasetError

__all__ = ["NamesArg", "read_names", "names_from_yaml_value", "NAMES_FILES"]

NamesArg = Union[Sequence[str], str, os.PathLike, None]

# Files in a dataset root that list class names, one per line, in class-id order.
NAMES_FILES = ("labels.txt", "classes.txt")


def read_names(names: NamesArg, source: str = "names") -> list[str] | None:
    """Normalise a names argument: a list of names, a comma-separated string, or the path of a
    ``.txt`` (one name per line) or ``.yaml`` (``names:`` key) file. ``None`` stays ``None``."""
    if names is None:
        return None
    if isinstance(names, (str, os.PathLike)):
        path = Path(names)
        if path.is_file():
            return _read_names_file(path)
        if isinstance(names, os.PathLike) or path.suffix.lower() in (".txt", ".yaml", ".yml"):
            raise DatasetError(f"{path}: names file does not exist")
        return _checked([part.strip() for part in str(names).split(",")], source)
    return _checked([str(name) for name in names], source)


def _read_names_file(path: Path) -> list[str]:
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DatasetError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(config, dict) or "names" not in config:
            raise DatasetError(f"{path}: no 'names' key")
        return names_from_yaml_value(config["names"], str(path))
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return _checked([line for line in lines if line], str(path))


def names_from_yaml_value(value: object, source: str) -> list[str]:
    """Class names from a YAML ``names`` value: a list, or a mapping ``{0: name, 1: name}``."""
    if isinstance(value, dict):
        try:
            ids = sorted(int(key) for key in value)
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: names: keys must be class ids 0..N-1") from None
        if ids != list(range(len(ids))):
            raise DatasetError(f"{source}: names: keys must be the class ids 0..{len(ids) - 1} without gaps")
        value = [value[key] if key in value else value[str(key)] for key in ids]
    if not isinstance(value, (list, tuple)):
        raise DatasetError(f"{source}: names: expected a list of class names or a mapping id -> name")
    return _checked([str(name) for name in value], source)


def _checked(names: list[str], source: str) -> list[str]:
    if not names or any(not name.strip() for name in names):
        raise DatasetError(f"{source}: class names must be a non-empty list of non-empty names")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DatasetError(f"{source}: class name {name!r} appears twice")
        seen.add(name)
    return names
