"""Datasets (COCO json, Pascal VOC, YOLO-txt), augmentation and the training data pipeline.

``load_dataset(path, split)`` reads any of the three layouts into a :class:`DetectionData`
(see :mod:`yoloxkit.data.layout` for how layouts and splits are recognised). Each format's
module holds its reader, its writer and its registry entry (:mod:`.coco`, :mod:`.voc`,
:mod:`.yolo`); :mod:`.formats` lists them.
"""

from __future__ import annotations

from .issues import DataIssue
from .layout import Layout, detect_layout, resolve_split
from .load import list_splits, load_dataset
from .records import DetectionData, ImageRecord

__all__ = [
    "load_dataset",
    "list_splits",
    "detect_layout",
    "resolve_split",
    "DetectionData",
    "ImageRecord",
    "DataIssue",
    "Layout",
]
