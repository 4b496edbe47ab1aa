"""What every dataset writer shares: placing images, progress bars, exact numbers, checks.

Writers (:func:`.coco.write_coco`, :func:`.voc.write_voc`, :func:`.yolo.write_yolo`) write
numbers so that reading the copy gives bit-identical float32 boxes. They place images with an
:class:`ImageLinker`: copies by default (independent of the source), or hard links / symbolic
links on request (no extra disk space, but an edit of one image changes the original).
"""

from __future__ import annotations

import errno
import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Iterable, TypeVar

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError
from .records import DetectionData, ImageRecord

__all__ = ["LINK_MODES", "ImageLinker", "link_image", "as_linker", "progress_bar", "check_same_names", "ignore_flags", "decimal32", "plain_decimal",
           "exact_number"]

T = TypeVar("T")


LINK_MODES = ("copy", "hard", "symlink")

# Errors of os.link that mean "this file system (pair) cannot hard-link", not "this file is bad".
_NO_HARD_LINKS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


class ImageLinker:
    """Places images in a dataset being written: ``mode`` ``"copy"`` (default), ``"hard"`` (hard
    links; copies where the file system cannot link, e.g. across devices, noted in
    :meth:`describe`) or ``"symlink"`` (absolute symbolic links to the source files)."""

    def __init__(self, mode: str = "copy") -> None:
        if mode not in LINK_MODES:
            raise DatasetError(f"--link: unknown mode {mode!r}; choose one of {', '.join(LINK_MODES)}")
        self.mode = mode
        self.counts = {m: 0 for m in LINK_MODES}
        self.fallback: str | None = None  # why hard links were impossible, if they were

    def __call__(self, source: Path, target: Path) -> None:
        """Place ``source`` at ``target``; an existing identical target is fine."""
        source, target = Path(source), Path(target)
        if target.exists() or target.is_symlink():
            if target.exists() and (target.samefile(source) or target.read_bytes() == source.read_bytes()):
                return
            raise DatasetError(f"{source}: another image with the same file name was already written to {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = self.mode
        if mode == "hard" and self.fallback is None:
            try:
                os.link(source, target)
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise DatasetError(f"{source}: cannot hard-link to {target} ({exc.strerror or exc})") from None
                self.fallback = exc.strerror or str(exc)
            else:
                self.counts["hard"] += 1
                return
        if mode == "symlink":
            os.symlink(os.path.abspath(source), target)
            self.counts["symlink"] += 1
            return
        shutil.copy2(source, target)
        self.counts["copy"] += 1

    def describe(self) -> str:
        """What happened to the images, for the conversion's output line."""
        done = {"copy": "copied", "hard": "hard-linked to the source (editing one changes the original)",
                "symlink": "symbolic links to the source"}
        parts = [f"{n} images {done[m]}" for m, n in self.counts.items() if n]
        text = "; ".join(parts) or "no images"
        if self.fallback is not None:
            text += f" (--link hard: hard links impossible here, {self.fallback}; the rest were copied)"
        return text


def link_image(source: Path, target: Path, mode: str = "copy") -> None:
    """Place one image at ``target`` (see :class:`ImageLinker`)."""
    ImageLinker(mode)(source, target)


def as_linker(link: "ImageLinker | str") -> ImageLinker:
    """``link`` itself, or a new :class:`ImageLinker` for a mode name."""
    return link if isinstance(link, ImageLinker) else ImageLinker(link)


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
