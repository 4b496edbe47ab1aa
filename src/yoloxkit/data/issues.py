"""Problems found while reading a dataset, collected so that ``check-data`` can list them all."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DatasetError

__all__ = ["DataIssue", "ERROR", "WARNING", "raise_first_error"]

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class DataIssue:
    """One problem in a dataset file.

    ``kind`` is one of ``unknown_class``, ``missing_image``, ``corrupt_image``, ``missing_size``,
    ``inverted_box``, ``degenerate_box``, ``outside_box``, ``malformed``, ``empty_file``,
    ``not_text`` (a label file that is not UTF-8 text, :mod:`yoloxkit.text`), ``duplicate`` (an
    image id, file name or annotation id listed twice), ``no_boxes`` (a warning: an empty COCO
    ``annotations`` list).
    Errors make :func:`yoloxkit.data.load_dataset` stop (unless ``strict=False``); warnings are
    repaired during training (boxes clipped or dropped) and reported by ``check-data``.
    """

    severity: str
    kind: str
    file: str
    element: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.element}: " if self.element else f"{self.file}: "
        return where + self.message


def raise_first_error(issues: list[DataIssue]) -> None:
    """Raise a one-line :class:`DatasetError` for the first error in ``issues``, if any."""
    errors = [issue for issue in issues if issue.severity == ERROR]
    if not errors:
        return
    others = len(errors) - 1
    noun = "error" if others == 1 else "errors"
    more = f" (and {others} more {noun}; `yoloxkit check-data` lists them all)" if others else ""
    raise DatasetError(f"{errors[0]}{more}")
