"""Class names of a detector and class filters given by name or id.

One resolution serves the Python API and the CLI (names exactly as the model has them, or
ids) and the HTTP API (names only, case-insensitive).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ..coco_names import fallback_names
from ..errors import InferenceError

__all__ = ["default_names", "choose_names", "UnknownClassError", "class_ids", "split_names"]


def default_names(num_classes: int) -> list[str]:
    """COCO names for 80 classes, else ``class0, class1, ...``."""
    return fallback_names(num_classes) or [f"class{i}" for i in range(num_classes)]


def choose_names(names: Sequence[str] | None, stored: Sequence[str] | None, num_classes: int) -> list[str]:
    """``names`` if given, else ``stored`` (from the weights file) if any, else
    :func:`default_names`; :class:`InferenceError` unless there is one per class."""
    if names is not None:
        chosen = list(names)
    elif stored:
        chosen = list(stored)
    else:
        chosen = default_names(num_classes)
    if len(chosen) != num_classes:
        raise InferenceError(f"{len(chosen)} class names given but the model has {num_classes} classes")
    return [str(n) for n in chosen]


def split_names(values: Iterable[str]) -> list[str]:
    """Class names from strings that may each hold several, comma-separated (blanks dropped)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class UnknownClassError(InferenceError):
    """A class name the model does not have; ``name`` is that name."""

    def __init__(self, name: str, names: Sequence[str]) -> None:
        known = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        super().__init__(f"unknown class {name!r}; the model's classes are: {known}")
        self.name = name


def class_ids(
    classes: Sequence[int | str] | None,
    names: Sequence[str],
    ids: bool = True,
    ignore_case: bool = False,
) -> list[int] | None:
    """Class ids for class names or ids, in order (``None``: no filter).

    A name is looked up exactly, then (``ignore_case``) case-insensitively; the first class
    of that name wins. With ``ids``, ints and digit strings are class ids (checked against the
    range); otherwise every item is a name. Raises :class:`UnknownClassError` for an unknown
    name, :class:`InferenceError` for an id out of range.
    """
    if classes is None:
        return None
    names = list(names)
    folded: dict[str, int] = {}
    if ignore_case:
        for index, name in enumerate(names):
            folded.setdefault(name.casefold(), index)
    found = []
    for item in classes:
        if not ids or (isinstance(item, str) and not item.isdigit()):
            name = str(item)
            if name in names:
                found.append(names.index(name))
            elif name.casefold() in folded:
                found.append(folded[name.casefold()])
            else:
                raise UnknownClassError(name, names)
        else:
            index = int(item)
            if not 0 <= index < len(names):
                raise InferenceError(f"class id {index} out of range 0..{len(names) - 1}")
            found.append(index)
    return found
