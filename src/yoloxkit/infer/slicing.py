"""Sliced inference (SAHI-style): the tile grid of a large image, and its settings.

An image is cut into overlapping tiles of ``height x width`` pixels; each tile runs through the
network at the detector's input size (so small objects keep their pixels), optionally with the
whole image as well, and the boxes are merged across tiles by :mod:`.merge`. Tiles start every
``round(side * (1 - overlap))`` pixels and the last tile of a row or column is moved back to end at
the image border, so every tile has the full size and the tiles cover the image exactly once at
least. Pure functions of sizes: no pixels are touched here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..errors import InferenceError

__all__ = [
    "CUT_MARGIN", "TILE_MAX_AREA", "MERGE_METHODS", "MATCH_METRICS", "MIN_SLICE", "Slicing", "parse_slice",
    "tile_count", "tile_starts", "check_fits", "tile_grid",
]

#: the smallest slice side: the model's largest stride (a tile must hold one cell of every level)
MIN_SLICE = 32
#: how boxes of different tiles are merged (see :mod:`.merge`)
MERGE_METHODS = ("nms", "nmm")
#: a box this close to a tile's inner border (a fraction of the tile side) is cut by it
CUT_MARGIN = 0.02
#: with the whole image, a tile's boxes larger than this fraction of the tile are left to it
TILE_MAX_AREA = 0.05
#: how two boxes are compared when merging: intersection over the smaller box, or over the union
MATCH_METRICS = ("ios", "iou")


def parse_slice(value: int | str | Sequence[int], argument: str = "slice") -> tuple[int, int]:
    """``640``, ``"640"``, ``"640x480"`` (height x width) or ``(h, w)`` as ``(h, w)`` pixels."""
    try:
        if isinstance(value, str):
            parts = value.lower().replace(" ", "").split("x")
            if len(parts) not in (1, 2):
                raise ValueError
            sides = [int(p) for p in parts]
        elif isinstance(value, bool):
            raise ValueError
        elif isinstance(value, int):
            sides = [value]
        else:
            sides = [int(v) for v in value]
            if len(sides) not in (1, 2) or any(float(a) != b for a, b in zip(value, sides)):
                raise ValueError
    except (TypeError, ValueError):
        raise InferenceError(f"{argument} must be H or HxW in pixels (e.g. 640 or 640x480), got {value!r}") from None
    height, width = (sides[0], sides[0]) if len(sides) == 1 else (sides[0], sides[1])
    if min(height, width) < MIN_SLICE:
        raise InferenceError(
            f"{argument} {height}x{width} is smaller than the model's largest stride ({MIN_SLICE} px)"
        )
    return height, width


@dataclass(frozen=True)
class Slicing:
    """How an image is sliced and its tiles' boxes merged.

    ``height x width`` is the tile size in image pixels (at least :data:`MIN_SLICE`); ``overlap``
    is the fraction of a tile shared with its neighbour, in ``(0, 1)``. The boxes of the tiles
    are merged per class: ``merge="nms"`` (default) keeps the best box of each group of boxes
    that match; ``"nmm"`` (SAHI's greedy non-maximum merging) replaces it by the box enclosing
    the group. Boxes match when their ``match`` metric (``"iou"``, default, or ``"ios"``:
    intersection over the smaller box) exceeds ``threshold`` (default 0.5).

    ``full`` also runs the whole image, for the objects larger than a tile. The whole image's
    boxes then come first, and the tiles only add objects it missed: a tile's boxes are dropped
    when they reach within :data:`CUT_MARGIN` of a tile border inside the image (the object is
    cut by the tile; the whole image sees it whole) or cover more than :data:`TILE_MAX_AREA` of
    the tile (large objects are the whole image's), and the merged tile boxes that match a box
    of the whole image (IoU above ``threshold``) are dropped too. The defaults were chosen by
    measurement (``benchmarks/bench_sliced.py``, docs/sliced_inference.md).
    """

    height: int
    width: int
    overlap: float = 0.2
    full: bool = False
    merge: str = "nms"
    match: str = "iou"
    threshold: float = 0.5

    def __post_init__(self) -> None:
        parse_slice((self.height, self.width))
        overlap = self.overlap
        if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0.0 < overlap < 1.0:
            raise InferenceError(f"slice_overlap must be between 0 and 1 (both excluded), got {overlap!r}")
        if self.merge not in MERGE_METHODS:
            raise InferenceError(f"slice merge must be one of {', '.join(MERGE_METHODS)}, got {self.merge!r}")
        if self.match not in MATCH_METRICS:
            raise InferenceError(f"slice match must be one of {', '.join(MATCH_METRICS)}, got {self.match!r}")
        if not 0.0 < float(self.threshold) < 1.0:
            raise InferenceError(f"slice merge threshold must be between 0 and 1, got {self.threshold!r}")

    @classmethod
    def from_options(
        cls, size: int | str | Sequence[int] | "Slicing" | None, overlap: float = 0.2, full: bool = False, **merge
    ) -> "Slicing | None":
        """The settings of ``slice_size``/``slice_overlap``/``slice_full`` (None: no slicing)."""
        if size is None or isinstance(size, Slicing):
            return size
        height, width = parse_slice(size, "slice_size")
        return cls(height, width, float(overlap) if not isinstance(overlap, bool) else overlap, bool(full), **merge)

    def label(self) -> str:
        """``slices 640x640 (overlap 0.2) + full image`` for the commands' header line."""
        text = f"slices {self.height}x{self.width} (overlap {self.overlap:g}, merge {self.merge})"
        return text + (" + full image" if self.full else "")

    def tiles(self, image_height: int, image_width: int, image: str | None = None) -> list[tuple[int, int, int, int]]:
        """The tiles of an image as ``(x0, y0, x1, y1)`` pixel boxes; see :func:`tile_grid`."""
        return tile_grid(image_height, image_width, self.height, self.width, self.overlap, image)

    def check_fits(self, image_height: int, image_width: int, image: str | None = None) -> None:
        """:class:`InferenceError` when the slice is larger than the image; see :func:`check_fits`."""
        check_fits(image_height, image_width, self.height, self.width, image)

    def crop_count(self, image_height: int, image_width: int) -> int:
        """How many crops an image of that size runs as (its tiles, plus itself with ``full``),
        counted without listing them; the slice must fit in the image."""
        tiles = tile_count(image_height, self.height, self.overlap) * tile_count(image_width, self.width, self.overlap)
        return tiles + int(self.full)


def _step(tile: int, overlap: float) -> int:
    return max(1, int(round(tile * (1.0 - overlap))))


def tile_count(length: int, tile: int, overlap: float) -> int:
    """How many tiles of ``tile`` pixels :func:`tile_starts` puts along a side of ``length``."""
    return max(1, math.ceil((length - tile) / _step(tile, overlap)) + 1)


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels along a side of ``length`` (``tile <= length``):
    every ``round(tile * (1 - overlap))`` pixels (at least 1), the last one ending at the border.
    The offsets are distinct: all but the last lie before ``length - tile``."""
    step = _step(tile, overlap)
    return [min(i * step, length - tile) for i in range(tile_count(length, tile, overlap))]


def check_fits(
    image_height: int, image_width: int, tile_height: int, tile_width: int, image: str | None = None
) -> None:
    """:class:`InferenceError` when a ``tile_height x tile_width`` slice is larger than the image
    (``image`` names it in the message)."""
    if tile_height > image_height or tile_width > image_width:
        where = f"image {image}" if image else "the image"
        raise InferenceError(
            f"slice {tile_height}x{tile_width} is larger than {where} ({image_height}x{image_width}, h x w)"
        )


def tile_grid(
    image_height: int, image_width: int, tile_height: int, tile_width: int, overlap: float,
    image: str | None = None,
) -> list[tuple[int, int, int, int]]:
    """Row-major ``(x0, y0, x1, y1)`` tiles covering an image; :class:`InferenceError` when the
    tile is larger than the image (:func:`check_fits`)."""
    check_fits(image_height, image_width, tile_height, tile_width, image)
    return [
        (x0, y0, x0 + tile_width, y0 + tile_height)
        for y0 in tile_starts(image_height, tile_height, overlap)
        for x0 in tile_starts(image_width, tile_width, overlap)
    ]
