"""What every dataset writer shares: linking images, progress bars, exact numbers, checks.

Writers (:func:`.coco.write_coco`, :func:`.voc.write_voc`, :func:`.yolo.write_yolo`) write
numbers so that reading the copy gives bit-identical float32 boxes.
"""

from __future__ import annotations

import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Iterable, TypeVar

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError
from .records import DetectionData, ImageRecord

__all__ = ["link_image", "progress_bar", "check_same_names", "ignore_flags", "decimal32", "plain_decimal",
           "exact_number"]

T = TypeVar("T")


def link_image(source: Path, target: Path) -> None:
    """Hard-link (or copy) ``source`` to ``target``; an existing identical target is fine."""
    if target.exists():
        if target.samefile(source) or target.read_bytes() == source.read_bytes():
            return
        raise DatasetError(f"{source}: another image with the same file name was already written to {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def progress_bar(items: Iterable[T], desc: str, progress: bool) -> Iterable[T]:
    """``items`` with a transient per-image progress bar (none if ``progress`` is false)."""
    return tqdm(items, desc=desc, unit="img", leave=False, disable=not progress)


def check_same_names(data: DetectionData, names: list[str]) -> None:
    """:class:`DatasetError` unless split ``data`` has the class names ``names`` of the first split."""
    if data.names != names:
        raise DatasetError(f"{data.root}: split {data.split!r} has different class names from the other splits")


def ignore_flags(record: ImageRecord) -> np.ndarray:
    """The per-box ignore flags of ``record`` (all False when it has none)."""
    return record.ignore if record.ignore is not None else np.zeros(len(record.boxes), bool)


def exact_number(value: float) -> str:
    """``value`` as text that reads back as the same double (integers without a decimal point)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def decimal32(value: float) -> Decimal:
    """The shortest decimal that reads back as the same float32 (e.g. 217.62, not 217.6199951...)."""
    return Decimal(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def plain_decimal(value: Decimal) -> str:
    """``value`` in positional notation without trailing zeros."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")
