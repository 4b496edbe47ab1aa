"""The in-memory form every dataset reader produces (COCO json, Pascal VOC, YOLO-txt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .issues import DataIssue

__all__ = ["ImageRecord", "DetectionData"]


@dataclass
class ImageRecord:
    """One image and its ground truth. ``boxes`` are ``[N, 4]`` float32 xyxy in image pixels;
    ``class_ids`` are ``[N]`` int64 indices into :attr:`DetectionData.names`."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray
    class_ids: np.ndarray
    image_id: int | str = 0
    # Per-box "difficult"/"iscrowd" flag (VOC difficult, COCO iscrowd); such boxes are ignored
    # in training and evaluation. ``None`` means all False.
    ignore: np.ndarray | None = None


@dataclass
class DetectionData:
    """A split of a dataset: ordered class names (from the data) and image records."""

    names: list[str]
    records: list[ImageRecord]
    format: str  # "coco" | "voc" | "yolo"
    split: str
    root: Path
    # For COCO data: the annotation json path (evaluation uses it as ground truth);
    # class index i corresponds to category id category_ids[i].
    annotation_file: Path | None = None
    category_ids: list[int] = field(default_factory=list)
    # Problems the reader found (see :class:`yoloxkit.data.issues.DataIssue`); errors are raised
    # by ``load_dataset`` unless it is called with ``strict=False`` (as ``check-data`` does).
    issues: list[DataIssue] = field(default_factory=list)
