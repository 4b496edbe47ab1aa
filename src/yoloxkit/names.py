"""Class-name lists given by the user or found beside the data (never shipped in the package).

A names file is ``.txt`` (one name per line, blank lines skipped), ``.json`` or ``.yaml``/``.yml``
(a list of names, or a mapping with a ``names`` key holding a list or ``{0: name, 1: name}``),
in UTF-8 or another encoding :func:`yoloxkit.text.read_text` accepts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence, Union

from .errors import DatasetError
from .text import read_text

__all__ = ["NamesArg", "read_names", "read_names_file", "names_from_yaml_value", "NAMES_FILES", "NAMES_SUFFIXES"]

NamesArg = Union[Sequence[str], str, os.PathLike, None]

# Files in a dataset root that list class names, one per line, in class-id order.
NAMES_FILES = ("labels.txt", "classes.txt")

# Suffixes that make a names argument a file (so a missing one is an error, not a name list).
NAMES_SUFFIXES = (".txt", ".json", ".yaml", ".yml")


def read_names(names: NamesArg, source: str = "names") -> list[str] | None:
    """Normalise a names argument: a list of names, a comma-separated string, or the path of a
    names file (see the module docstring). ``None`` stays ``None``."""
    if names is None:
        return None
    if isinstance(names, (str, os.PathLike)):
        path = Path(names)
        if path.is_file() or isinstance(names, os.PathLike) or path.suffix.lower() in NAMES_SUFFIXES:
            return read_names_file(path)
        return _checked([part.strip() for part in str(names).split(",")], source)
    return _checked([str(name) for name in names], source)


def read_names_file(path: str | os.PathLike) -> list[str]:
    """Class names from a ``.txt``, ``.json`` or ``.yaml`` file; :class:`DatasetError` if it is
    missing, not text (:func:`yoloxkit.text.read_text`), cannot be parsed or holds no valid list
    of names."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"names file not found: {path}")
    text = read_text(path, "class-names file")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DatasetError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        return _names_from_config(config, path)
    if suffix == ".json":
        try:
            config = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
        return _names_from_config(config, path)
    lines = [line.strip() for line in text.splitlines()]
    return _checked([line for line in lines if line], str(path))


def _names_from_config(config: object, path: Path) -> list[str]:
    """Names from a parsed JSON/YAML document: a list, or a mapping with a ``names`` key."""
    if isinstance(config, list):
        return names_from_yaml_value(config, str(path))
    if not isinstance(config, dict) or "names" not in config:
        raise DatasetError(f"{path}: no 'names' key")
    return names_from_yaml_value(config["names"], str(path))


def names_from_yaml_value(value: object, source: str) -> list[str]:
    """Class names from a YAML/JSON ``names`` value: a list, or a mapping ``{0: name, 1: name}``."""
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
