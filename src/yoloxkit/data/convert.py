"""``convert-dataset``: COCO json <-> Pascal VOC <-> YOLO-txt, every split, names and boxes exact.

Split names are kept (COCO ``val2017`` -> VOC ``ImageSets/Main/val2017.txt`` -> YOLO
``images/val2017``). Class names keep their order: VOC gets a ``labels.txt``, YOLO a
``data.yaml``. The formats are the entries of :mod:`.formats`; each format's writer sits beside
its reader (:func:`.coco.write_coco`, :func:`.voc.write_voc`, :func:`.yolo.write_yolo`) and writes
numbers so that reading the copy gives bit-identical float32 boxes. Ignore flags map to COCO
``iscrowd`` and VOC ``difficult``; YOLO-txt has no such field, so ignored boxes are left out of
YOLO labels. Images are copied by default, so the result is independent of the source; ``link="hard"`` hard-links them (no extra
disk space, but editing an image then changes the original; copied where the file system cannot
link, e.g. across devices) and ``link="symlink"`` makes symbolic links. The output is built in a
temporary directory beside ``DST`` and renamed at the end, so an interrupted conversion leaves
nothing half-written; its folders get the permissions the umask gives (as ``mkdir`` would).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from ..names import NamesArg
from .coco import write_coco
from .formats import dataset_format, format_names
from .load import list_splits, load_dataset
from .records import DetectionData
from .voc import write_voc
from .writing import LINK_MODES, ImageLinker
from .yolo import write_yolo

__all__ = ["Conversion", "convert_dataset", "write_coco", "write_voc", "write_yolo", "FORMATS", "LINK_MODES"]

FORMATS = format_names()  # the registry's formats (:mod:`.formats`)


@dataclass
class Conversion:
    """What :func:`convert_dataset` did: the splits it read and how the images were placed."""

    splits: list[DetectionData]
    linker: ImageLinker

    @property
    def images(self) -> int:
        return sum(len(s.records) for s in self.splits)

    def describe(self) -> str:
        """How the images were placed (copied, hard-linked, symbolic links; fallbacks)."""
        return self.linker.describe()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def convert_dataset(src: str | os.PathLike, dst: str | os.PathLike, to: str, names: NamesArg = None,
                    progress: bool = True, link: str = "copy") -> Conversion:
    """Convert every split of the dataset at ``src`` into format ``to`` at ``dst`` (which must
    not exist or be empty). ``link``: ``"copy"`` (default), ``"hard"`` or ``"symlink"`` (see the
    module docstring). Returns the splits that were read and how the images were placed."""
    if to not in format_names():
        raise DatasetError(f"--to: unknown format {to!r}; choose one of {', '.join(format_names())}")
    linker = ImageLinker(link)
    dst = Path(dst)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DatasetError(f"{dst}: destination exists and is not empty")
    splits = [load_dataset(src, split=name, names=names) for name in list_splits(src)]
    if not splits:
        raise DatasetError(f"{src}: no splits found")
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it 0700
        dataset_format(to).write(splits, staging, progress=progress, link=linker)
        if dst.exists():
            dst.rmdir()
        os.replace(staging, dst)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return Conversion(splits, linker)
