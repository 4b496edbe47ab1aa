"""Object cut-outs of a COCO split: instance masks decoded with pycocotools, cropped and scaled.

A cut-out is one non-crowd annotation of a source image: the pixels of its segmentation mask
(polygons or RLE, decoded with ``pycocotools.mask``), cropped to the mask's tight box plus a small
margin (for interpolation). Objects that are too small, touch the image border (cut off by the
frame) or whose mask is fragmented (mostly occluded) are left out, because pasted elsewhere
they would not look like the object.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..data import load_dataset
from ..errors import DatasetError
from ..imaging.read import read_image
from ..text import read_text

__all__ = ["SourceSplit", "Cutout", "ScaledCutout", "read_source", "annotation_mask", "cut_out_objects",
           "scale_cutout"]

#: pixels around the mask's tight box kept in a cut-out (interpolation support)
MARGIN = 2


@dataclass(frozen=True)
class SourceSplit:
    """One split of a COCO dataset, as its raw json (the masks) and its image files."""

    root: Path
    split: str
    content: dict
    paths: dict[int, Path]  # image id -> file


@dataclass(frozen=True)
class Cutout:
    """One object: ``image`` (BGR) and ``mask`` (0/1) crops; ``box`` is the mask's tight box
    ``(x1, y1, x2, y2)`` inside the crop (exclusive ends)."""

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    category_id: int
    image_id: int
    annotation_id: int


@dataclass(frozen=True)
class ScaledCutout:
    """A cut-out at its pasting scale, cropped to the tight box of ``mask``: ``patch`` (BGR
    uint8), ``alpha`` (float32 blending weights, 0 outside ``mask``) and ``mask`` (bool)."""

    patch: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray
    source: Cutout


def read_source(source: str | os.PathLike, split: str) -> SourceSplit:
    """Check and read ``split`` of the COCO dataset ``source`` (:class:`DatasetError` if it is
    missing, not COCO, or broken)."""
    data = load_dataset(source, split=split)
    if data.format != "coco" or data.annotation_file is None:
        raise DatasetError(f"{source}: source must be a COCO dataset with instance masks, got {data.format}")
    content = json.loads(read_text(data.annotation_file, "COCO annotation file"))
    paths = {int(r.image_id): Path(r.path) for r in data.records}
    return SourceSplit(Path(data.root), data.split, content, paths)


def annotation_mask(segmentation, height: int, width: int) -> np.ndarray:
    """The ``[height, width]`` uint8 0/1 mask of a COCO segmentation (polygons, or RLE)."""
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    with warnings.catch_warnings():  # pycocotools' Cython under numpy 2 warns about __array__(copy=)
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return mask_utils.decode(rle).astype(np.uint8)


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _main_component_share(mask: np.ndarray) -> float:
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return 0.0
    areas = stats[1:, cv2.CC_STAT_AREA]
    return float(areas.max()) / float(areas.sum())


def cut_out_objects(source: SourceSplit, min_area: int = 32 * 32, min_main_component: float = 0.85,
                    skip_truncated: bool = True) -> list[Cutout]:
    """The usable objects of ``source``, in annotation-id order.

    Kept: ``iscrowd`` 0, at least ``min_area`` mask pixels, the largest connected part holding at
    least ``min_main_component`` of the mask, and (``skip_truncated``) not touching the border.
    """
    by_image: dict[int, list[dict]] = {}
    for ann in source.content.get("annotations") or []:
        if not ann.get("iscrowd", 0) and int(ann["image_id"]) in source.paths:
            by_image.setdefault(int(ann["image_id"]), []).append(ann)
    cutouts = []
    for image_id in sorted(by_image):
        image = read_image(source.paths[image_id])
        height, width = image.shape[:2]
        for ann in sorted(by_image[image_id], key=lambda a: int(a["id"])):
            mask = annotation_mask(ann["segmentation"], height, width)
            box = _tight_box(mask)
            if box is None or int(mask.sum()) < min_area:
                continue
            x1, y1, x2, y2 = box
            if skip_truncated and (x1 == 0 or y1 == 0 or x2 == width or y2 == height):
                continue
            if _main_component_share(mask[y1:y2, x1:x2]) < min_main_component:
                continue
            cx1, cy1 = max(0, x1 - MARGIN), max(0, y1 - MARGIN)
            cx2, cy2 = min(width, x2 + MARGIN), min(height, y2 + MARGIN)
            cutouts.append(Cutout(
                image=image[cy1:cy2, cx1:cx2].copy(), mask=mask[cy1:cy2, cx1:cx2].copy(),
                box=(x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1), category_id=int(ann["category_id"]),
                image_id=image_id, annotation_id=int(ann["id"]),
            ))
    return cutouts


def scale_cutout(cutout: Cutout, longest: int, feather: bool = True) -> ScaledCutout | None:
    """``cutout`` scaled so that its object's longest side is ``longest`` pixels (``None`` if
    nothing of the mask is left).

    The crop and its mask are resized by the same factor (``cv2.INTER_AREA`` when shrinking,
    ``INTER_LINEAR`` when enlarging); the pasted mask is where the resized mask is >= 0.5.
    With ``feather`` the blending weight inside that mask is the resized mask itself (the
    edge pixels blend with what lies below, a one-pixel soft edge); without, it is 1. Either
    way no pixel outside the mask is touched, so the mask's tight box is the object's box.
    """
    x1, y1, x2, y2 = cutout.box
    scale = longest / max(x2 - x1, y2 - y1)
    height, width = cutout.mask.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(cutout.image, size, interpolation=interpolation)
    alpha = np.clip(cv2.resize(cutout.mask.astype(np.float32), size, interpolation=interpolation), 0.0, 1.0)
    mask = alpha >= 0.5
    box = _tight_box(mask)
    if box is None:
        return None
    bx1, by1, bx2, by2 = box
    mask = mask[by1:by2, bx1:bx2]
    weights = alpha[by1:by2, bx1:bx2] if feather else np.ones(mask.shape, np.float32)
    return ScaledCutout(patch=patch[by1:by2, bx1:bx2].copy(), alpha=np.where(mask, weights, 0.0).astype(np.float32),
                        mask=mask, source=cutout)
