"""A large-image small-object evaluation set generated from a COCO split (issue 15).

Each generated image is:

- a **background**: an image of the source split, resized with ``cv2.INTER_CUBIC`` (up-scaled,
  for targets larger than the source) to cover the target size at its aspect ratio, and
  centre-cropped (:func:`cover_transform`; no letterbox, no stretch). Its own annotations move with
  it exactly: ``x' = x * sx - ox``, ``y' = y * sy - oy`` with ``sx = rw / w``, ``sy = rh / h``
  (``rw x rh`` the resized size) and the crop offset ``(ox, oy)``, then clipped to the image.
  These are the *large* objects. A box left with less than ``min_visible`` of its area is
  kept as ``iscrowd: 1`` (an ignored region: what is left of the object may be detected
  without counting as a false positive); one clipped to under 2 px is dropped;
- **pasted objects**: cut-outs of *other* images of the split (:mod:`.cutouts`), scaled to a
  longest side drawn uniformly from ``object_size`` and alpha-pasted at random positions, never
  overlapping each other (2 px apart) and covering at most ``max_cover`` of any background
  box. A category is drawn uniformly first, then one of its objects (so rare classes are not
  swamped by people). Their ground truth is exact: the box is the tight box of the pasted mask,
  the area its pixel count, the segmentation its RLE.

Each image entry carries ``synth``: its background's file name and id, ``scale`` ``[sx, sy]`` and
``offset`` ``[ox, oy]``; each annotation ``synth_source`` (``background`` or ``pasted``) and
``source_id``, the annotation of the source split it comes from.

Everything is drawn from ``numpy.random.default_rng`` seeded with ``seed`` (image ``i`` from
``(seed, i)``), so the same arguments give byte-identical files. Images and the annotation json
are written atomically; the json comes last.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..data.writing import progress_bar
from ..errors import DatasetError, YoloxkitError
from ..imaging.read import read_image
from ..io import atomic_path, atomic_write_text
from .cutouts import Cutout, SourceSplit, annotation_mask, cut_out_objects, read_source, scale_cutout
from .paste import paste, pasted_annotation, place, rle

__all__ = ["SmallObjectSet", "make_small_object_set", "cover_transform", "size_bucket"]

DEFAULT_SIZES = ((1920, 1080), (3840, 2160))
_FORMATS = {"jpg": [int(cv2.IMWRITE_JPEG_QUALITY), 95], "png": [int(cv2.IMWRITE_PNG_COMPRESSION), 3]}


@dataclass(frozen=True)
class SmallObjectSet:
    """What :func:`make_small_object_set` wrote. ``objects`` counts the non-crowd boxes per COCO
    area bucket (``small`` < 32², ``medium`` < 96², ``large``)."""

    out: Path
    split: str
    images: int
    objects: dict[str, int]
    pasted: int
    background: int
    ignored: int
    images_by_size: dict[str, int] = field(default_factory=dict)

    @property
    def annotation_file(self) -> Path:
        return self.out / "annotations" / f"instances_{self.split}.json"

    def describe(self) -> str:
        """One paragraph: images per size and objects per bucket."""
        sizes = ", ".join(f"{n} at {size}" for size, n in self.images_by_size.items())
        total = sum(self.objects.values())
        return (f"wrote {self.images} images ({sizes}) to {self.out / self.split} and {self.annotation_file}: "
                f"{total} objects ({self.pasted} pasted, {self.background} from the backgrounds), "
                f"{self.objects['small']} small, {self.objects['medium']} medium, {self.objects['large']} large "
                f"by COCO area; {self.ignored} ignored (iscrowd) regions.")


def size_bucket(area: float) -> str:
    """COCO's area bucket of an object: ``small``, ``medium`` or ``large``."""
    return "small" if area < 32 ** 2 else "medium" if area < 96 ** 2 else "large"


def cover_transform(width: int, height: int, target: tuple[int, int]) -> tuple[float, float, int, int, int, int]:
    """``(sx, sy, ox, oy, rw, rh)``: an image of ``width x height`` resized to ``rw x rh`` (the
    smallest size at its aspect ratio covering ``target = (W, H)``, rounded) and cropped at
    ``(ox, oy)`` to the centre ``W x H``. A point ``(x, y)`` goes to ``(x * sx - ox, y * sy - oy)``."""
    tw, th = target
    scale = max(tw / width, th / height)
    rw, rh = max(tw, round(width * scale)), max(th, round(height * scale))
    return rw / width, rh / height, (rw - tw) // 2, (rh - th) // 2, rw, rh


def _check_range(name: str, value: Sequence[int], low: int) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise YoloxkitError(f"{name} must be a (low, high) pair of integers, got {value!r}") from None
    if lo < low or hi < lo:
        raise YoloxkitError(f"{name} must satisfy {low} <= low <= high, got {lo}..{hi}")
    return lo, hi


def _check_arguments(sizes, count, objects_per_image, object_size) -> tuple[list[tuple[int, int]], list[int]]:
    try:
        sizes = [(int(w), int(h)) for w, h in sizes]
    except (TypeError, ValueError):
        raise YoloxkitError(f"sizes must be (width, height) pairs, got {sizes!r}") from None
    if not sizes:
        raise YoloxkitError("sizes is empty: give at least one (width, height)")
    counts = [int(count)] * len(sizes) if isinstance(count, (int, np.integer)) else [int(c) for c in count]
    if len(counts) != len(sizes) or any(c < 0 for c in counts) or sum(counts) < 1:
        raise YoloxkitError(f"count must be one number >= 1 or one number >= 0 per size ({len(sizes)}), got {count!r}")
    _check_range("objects_per_image", objects_per_image, 0)
    lo, hi = _check_range("object_size", object_size, 2)
    for w, h in sizes:
        if not (64 <= w <= 16384 and 64 <= h <= 16384):
            raise YoloxkitError(f"sizes: {w}x{h} is outside 64..16384 pixels a side")
        if hi * 4 > min(w, h):
            raise YoloxkitError(f"object_size: {hi} px is too large for a {w}x{h} image (at most a quarter side)")
    return sizes, counts


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"out {out} exists and is not an empty directory; give a new or empty one")


def _background_annotations(source: SourceSplit, image: dict, transform, target, min_visible: float) -> list[dict]:
    """The annotations of background ``image`` moved by ``transform`` into the ``target`` image."""
    sx, sy, ox, oy, rw, rh = transform
    tw, th = target
    found = []
    for ann in source.content.get("annotations") or []:
        if ann["image_id"] != image["id"]:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        full = (x * sx - ox, y * sy - oy, (x + w) * sx - ox, (y + h) * sy - oy)
        x1, y1 = max(0.0, full[0]), max(0.0, full[1])
        x2, y2 = min(float(tw), full[2]), min(float(th), full[3])
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        visible = (x2 - x1) * (y2 - y1) / max((full[2] - full[0]) * (full[3] - full[1]), 1e-9)
        segmentation = ann.get("segmentation") or []
        if isinstance(segmentation, list):
            moved = [[v * sx - ox if i % 2 == 0 else v * sy - oy for i, v in enumerate(p)] for p in segmentation]
            area = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(moved, th, tw)))) if moved else 0.0
            segmentation = moved
        else:  # RLE (crowd): decode, resize, crop
            mask = annotation_mask(segmentation, image["height"], image["width"])
            mask = cv2.resize(mask, (rw, rh), interpolation=cv2.INTER_NEAREST)[oy:oy + th, ox:ox + tw]
            segmentation = rle(mask)
            area = float(mask.sum())
        found.append({
            "category_id": int(ann["category_id"]), "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area,
            "iscrowd": int(bool(ann.get("iscrowd", 0)) or visible < min_visible), "segmentation": segmentation,
            "synth_source": "background", "source_id": int(ann["id"]),
        })
    return found


@dataclass(frozen=True)
class _Recipe:
    """How objects are pasted into each image (the arguments of :func:`make_small_object_set`)."""

    objects_per_image: tuple[int, int]
    object_size: tuple[int, int]
    max_cover: float
    min_visible: float
    feather: bool


def _compose(source: SourceSplit, background: dict, by_category: dict[int, list[Cutout]], target,
             rng: np.random.Generator, recipe: _Recipe) -> tuple[np.ndarray, list[dict], dict]:
    """One generated image: ``background`` covering ``target``, with pasted objects; its annotations
    (background ones first) and its ``synth`` info."""
    transform = cover_transform(background["width"], background["height"], target)
    sx, sy, ox, oy, rw, rh = transform
    tw, th = target
    image = read_image(source.paths[background["id"]])
    canvas = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_CUBIC)[oy:oy + th, ox:ox + tw].copy()
    annotations = _background_annotations(source, background, transform, target, recipe.min_visible)
    bg_boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                         for a in annotations if not a["iscrowd"]], dtype=np.float64).reshape(-1, 4)
    covered = np.zeros(len(bg_boxes))
    pool = {c: [o for o in objs if o.image_id != background["id"]] for c, objs in by_category.items()}
    categories = sorted(c for c, objs in pool.items() if objs)
    low, high = recipe.objects_per_image
    wanted = int(rng.integers(low, high + 1))
    placed: list = []
    for _ in range(wanted * 3 if categories else 0):
        if len(placed) == wanted:
            break
        objs = pool[categories[int(rng.integers(len(categories)))]]
        cutout = objs[int(rng.integers(len(objs)))]
        longest = int(rng.integers(recipe.object_size[0], recipe.object_size[1] + 1))
        scaled = scale_cutout(cutout, longest, recipe.feather)
        if scaled is None:
            continue
        corner = place(rng, target, scaled.mask.shape, placed, bg_boxes, covered, recipe.max_cover)
        if corner is None:
            continue
        paste(canvas, scaled, *corner)
        annotations.append(pasted_annotation(scaled, *corner, target))
    info = {"background": background["file_name"], "background_id": int(background["id"]),
            "scale": [sx, sy], "offset": [ox, oy]}
    return canvas, annotations, info


def make_small_object_set(
    source: str | os.PathLike,
    split: str,
    out: str | os.PathLike,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    count: int | Sequence[int] = 16,
    objects_per_image: tuple[int, int] = (20, 40),
    object_size: tuple[int, int] = (12, 64),
    seed: int = 0,
    progress: bool = True,
    image_format: str = "jpg",
    max_cover: float = 0.1,
    min_visible: float = 0.5,
    feather: bool = True,
) -> SmallObjectSet:
    """Generate a COCO dataset of large images with many small pasted objects (module docstring).

    Args:
        source: COCO dataset directory (``annotations/instances_SPLIT.json`` with masks).
        split: its split to take backgrounds and objects from (name or unique prefix); the output
            split has the same name.
        out: new or empty directory: ``out/SPLIT/*.jpg`` and ``out/annotations/instances_SPLIT.json``.
        sizes: ``(width, height)`` of the images; ``count`` images of each (one number per size,
            or one for all).
        objects_per_image: how many objects to paste, drawn uniformly in ``low..high`` (fewer when
            no free place is found).
        object_size: longest side of a pasted object in pixels, drawn uniformly in ``low..high``.
        image_format: ``"jpg"`` (quality 95) or ``"png"`` (lossless).
        max_cover: largest share of a background box that pasted objects may cover.
        min_visible: background boxes cropped to less than this share become ``iscrowd`` regions.
        feather: soft one-pixel mask edge (:func:`~yoloxkit.synth.cutouts.scale_cutout`).
    """
    sizes, counts = _check_arguments(sizes, count, objects_per_image, object_size)
    recipe = _Recipe(tuple(objects_per_image), tuple(object_size), max_cover, min_visible, feather)
    _check_output_options(image_format, max_cover, min_visible)
    out = Path(out)
    _check_out(out)
    data = read_source(source, split)
    by_category = _cutouts_by_category(data, source)
    targets = [size for size, n in zip(sizes, counts) for _ in range(n)]
    images, annotations = _generate(data, by_category, targets, recipe, seed, out, image_format, progress)
    content = {
        "info": {"description": f"yoloxkit small-object set from {data.split} (seed {seed})", "version": "1.0"},
        "licenses": data.content.get("licenses", []),
        "images": images,
        "annotations": annotations,
        "categories": data.content["categories"],
    }
    atomic_write_text(json.dumps(content), out / "annotations" / f"instances_{data.split}.json")
    return _summary(out, data.split, images, annotations)


def _check_output_options(image_format: str, max_cover: float, min_visible: float) -> None:
    if image_format not in _FORMATS:
        raise YoloxkitError(f"image_format must be one of {', '.join(_FORMATS)}, got {image_format!r}")
    if not 0.0 <= max_cover <= 1.0 or not 0.0 <= min_visible <= 1.0:
        raise YoloxkitError(f"max_cover and min_visible must be in [0, 1], got {max_cover} and {min_visible}")


def _cutouts_by_category(data: SourceSplit, source) -> dict[int, list[Cutout]]:
    """The split's object cut-outs by category id; :class:`DatasetError` if there are none."""
    by_category: dict[int, list[Cutout]] = {}
    for cutout in cut_out_objects(data):
        by_category.setdefault(cutout.category_id, []).append(cutout)
    if not by_category:
        raise DatasetError(f"{source}: split {data.split} has no object masks large enough to cut out")
    return by_category


def _generate(data: SourceSplit, by_category: dict[int, list[Cutout]], targets: list[tuple[int, int]],
              recipe: _Recipe, seed: int, out: Path, image_format: str,
              progress: bool) -> tuple[list[dict], list[dict]]:
    """Compose and write image ``i`` (of size ``targets[i]``) from the rng ``(seed, i)``; the
    json ``images`` and ``annotations`` lists."""
    backgrounds = sorted((im for im in data.content["images"] if int(im["id"]) in data.paths), key=lambda im: im["id"])
    order = np.random.default_rng(seed).permutation(len(backgrounds))
    images, annotations = [], []
    for index in progress_bar(range(len(targets)), "make-small-objects", progress):
        target = targets[index]
        rng = np.random.default_rng((seed, index))
        background = backgrounds[int(order[index % len(order)])]
        canvas, found, info = _compose(data, background, by_category, target, rng, recipe)
        file_name = f"synth_{index + 1:06d}.{image_format}"
        _write_image(canvas, out / data.split / file_name, image_format)
        images.append({"id": index + 1, "file_name": file_name, "width": target[0], "height": target[1],
                       "synth": info})
        for ann in found:
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, **ann})
    return images, annotations


def _write_image(canvas: np.ndarray, path: Path, image_format: str) -> None:
    ok, encoded = cv2.imencode(f".{image_format}", canvas, _FORMATS[image_format])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 BGR
        raise YoloxkitError(f"cannot encode {path.name}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def _summary(out: Path, split: str, images: list[dict], annotations: list[dict]) -> SmallObjectSet:
    kept = [a for a in annotations if not a["iscrowd"]]
    buckets = Counter(size_bucket(a["area"]) for a in kept)
    by_size = Counter(f"{im['width']}x{im['height']}" for im in images)
    return SmallObjectSet(
        out=out, split=split, images=len(images),
        objects={b: buckets.get(b, 0) for b in ("small", "medium", "large")},
        pasted=sum(a["synth_source"] == "pasted" for a in kept),
        background=sum(a["synth_source"] == "background" for a in kept),
        ignored=len(annotations) - len(kept),
        images_by_size=dict(by_size),
    )
