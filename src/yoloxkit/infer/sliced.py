"""Running a detector on the tiles of images (and optionally the whole images), then merging.

The crops of every image of a call (tiles, plus the image itself with ``Slicing.full``) go
through the network in batches of ``batch_size``, each letterboxed to the detector's input
size like any image. A tile's boxes are clipped to the tile by post-processing, moved by the
tile's origin into image pixels, and merged with :func:`.merge.merge_detections`. With
``Slicing.full`` the whole image's boxes come first (:func:`.merge.add_unmatched`) and the
tiles contribute only small boxes clear of their inner borders (:func:`tile_keep`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .merge import add_unmatched, box_areas, merge_detections
from .slicing import CUT_MARGIN, TILE_MAX_AREA, Slicing

__all__ = ["Output", "DetectCrops", "crop_plan", "uncut", "tile_keep", "detect_sliced"]

#: ``(boxes [N, 4] xyxy, scores [N], class_ids [N])`` of one image or crop
Output = tuple[np.ndarray, np.ndarray, np.ndarray]
#: detection on a list of BGR crops, one :data:`Output` per crop in crop pixels
DetectCrops = Callable[[list[np.ndarray]], list[Output]]


def crop_plan(
    sizes: Sequence[tuple[int, int]], slicing: Slicing, names: Sequence[str | None] | None = None
) -> list[tuple[int, tuple[int, int, int, int]]]:
    """``(image index, (x0, y0, x1, y1))`` of every crop to run, image by image: its tiles in
    row-major order, then the whole image when ``slicing.full``."""
    names = list(names) if names is not None else [None] * len(sizes)
    plan = []
    for index, ((height, width), name) in enumerate(zip(sizes, names)):
        plan.extend((index, tile) for tile in slicing.tiles(int(height), int(width), name))
        if slicing.full:
            plan.append((index, (0, 0, int(width), int(height))))
    return plan


def uncut(
    boxes: np.ndarray, tile: tuple[int, int, int, int], image_size: tuple[int, int], margin: float = CUT_MARGIN
) -> np.ndarray:
    """Mask of the image-pixel ``boxes`` of a tile that stay clear of its inner borders: a box
    reaching within ``margin`` (a fraction of the tile side) of a tile edge that is not the
    image's own edge is cut by the tile. ``image_size`` is ``(height, width)``."""
    x0, y0, x1, y1 = tile
    height, width = image_size
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    keep = np.ones(len(boxes), dtype=bool)
    if x0 > 0:
        keep &= boxes[:, 0] > x0 + dx
    if y0 > 0:
        keep &= boxes[:, 1] > y0 + dy
    if x1 < width:
        keep &= boxes[:, 2] < x1 - dx
    if y1 < height:
        keep &= boxes[:, 3] < y1 - dy
    return keep


def tile_keep(boxes: np.ndarray, tile: tuple[int, int, int, int], image_size: tuple[int, int]) -> np.ndarray:
    """With the whole image also run: the tile's boxes that are :func:`uncut` and cover at most
    :data:`TILE_MAX_AREA` of the tile."""
    x0, y0, x1, y1 = tile
    return uncut(boxes, tile, image_size) & (box_areas(boxes) <= TILE_MAX_AREA * (x1 - x0) * (y1 - y0))


def _concat(outputs: list[Output]) -> Output:
    return (
        np.concatenate([o[0] for o in outputs]).reshape(-1, 4).astype(np.float32),
        np.concatenate([o[1] for o in outputs]).astype(np.float32),
        np.concatenate([o[2] for o in outputs]).astype(np.int64),
    )


def detect_sliced(
    images: Sequence[np.ndarray],
    slicing: Slicing,
    detect: DetectCrops,
    batch_size: int,
    names: Sequence[str | None] | None = None,
) -> list[Output]:
    """One merged :data:`Output` per image, in image pixels (see the module docstring)."""
    plan = crop_plan([image.shape[:2] for image in images], slicing, names)
    tiles: list[list[Output]] = [[] for _ in images]
    whole: list[Output | None] = [None] * len(images)
    last_crop = {index: position for position, (index, _) in enumerate(plan)}  # the whole image, with full
    for start in range(0, len(plan), batch_size):
        chunk = plan[start : start + batch_size]
        crops = [images[index][y0:y1, x0:x1] for index, (x0, y0, x1, y1) in chunk]
        for position, ((index, tile), (boxes, scores, class_ids)) in enumerate(zip(chunk, detect(crops))):
            x0, y0, _, _ = tile
            boxes = boxes.astype(np.float32) + np.array([x0, y0, x0, y0], dtype=np.float32)
            if slicing.full and start + position == last_crop[index]:
                whole[index] = (boxes, scores, class_ids)
                continue
            if slicing.full:
                keep = tile_keep(boxes, tile, images[index].shape[:2])
                boxes, scores, class_ids = boxes[keep], scores[keep], class_ids[keep]
            tiles[index].append((boxes, scores, class_ids))
    merged = []
    for index, outputs in enumerate(tiles):
        boxes, scores, class_ids = _concat(outputs)  # every image has at least one tile
        result = merge_detections(boxes, scores, class_ids, slicing.merge, slicing.match, slicing.threshold)
        if whole[index] is not None:
            result = add_unmatched(whole[index], result, "iou", slicing.threshold)
        merged.append(result)
    return merged
