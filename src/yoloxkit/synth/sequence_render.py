"""Pixels and ground truth of one synthetic tracking sequence (:mod:`.sequences`).

Coordinates are continuous frame pixels: pixel ``(u, v)`` covers ``[u, u + 1) x [v, v + 1)``. A
camera window ``(x0, y0, w, h)`` over the background image (the frame's aspect ratio, inside the
image) maps to the ``W x H`` frame by ``x' = (x - x0) * W / w``, ``y' = (y - y0) * H / h``
(:func:`map_box`); :func:`window_matrix` is the same map for ``cv2.warpAffine``, whose pixel
centres sit at integer coordinates (hence its half-pixel term). The pure functions here (camera
path, box map, clipping, visibility from a coverage map) are what the tests check directly.

A frame is drawn bottom to top: the warped background (whose COCO objects are the *scene
objects*), the moving cut-outs in paste order, the occluder. ``top`` records, per pixel, the
topmost layer drawn there (-1 background, ``i`` cut-out ``i``, ``len(movers)`` the occluder), so
what lies in front of an object is one comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from ..errors import YoloxkitError
from .cutouts import ScaledCutout

__all__ = ["CAMERA_KINDS", "Window", "Box", "Occluder", "Mover", "SceneObject", "SequencePlan", "ease",
           "fit_window", "place_window", "camera_path", "window_matrix", "map_box", "clip_box", "box_visibility",
           "plan_occluder", "plan_mover", "render_sequence"]

CAMERA_KINDS = ("pan", "zoom-in", "zoom-out", "pan-zoom")
MIN_SIDE = 4.0  # a row needs a clipped box at least this wide and high ...
MIN_INSIDE = 0.4  # ... and this share of its unclipped box inside the frame

Window = tuple[float, float, float, float]  # x0, y0, w, h in background-image pixels
Box = tuple[float, float, float, float]  # x1, y1, x2, y2


def ease(t: float) -> float:
    """A smooth ramp from 0 to 1 over ``t`` in [0, 1] (cosine ease-in-out)."""
    return 0.5 - 0.5 * math.cos(math.pi * t)


def fit_window(image_size: tuple[int, int], frame_size: tuple[int, int]) -> tuple[float, float]:
    """``(w, h)`` of the largest window with the frame's aspect ratio inside the image."""
    (iw, ih), (fw, fh) = image_size, frame_size
    w = min(float(iw), ih * fw / fh)
    return w, w * fh / fw


def place_window(image_size: tuple[int, int], frame_size: tuple[int, int], share: float,
                 ax: float, ay: float) -> Window:
    """A window ``share`` times the largest fitting one, at ``(ax, ay)`` in [0, 1] of its free range
    (0: left/top edge of the image, 1: right/bottom edge)."""
    full_w, full_h = fit_window(image_size, frame_size)
    w, h = full_w * share, full_h * share
    return (image_size[0] - w) * ax, (image_size[1] - h) * ay, w, h


def _anchor(image_size, frame_size, share: float, point: tuple[float, float]) -> tuple[float, float]:
    """The ``(ax, ay)`` of :func:`place_window` that centres the window on ``point`` (clamped)."""
    full_w, full_h = fit_window(image_size, frame_size)
    anchors = []
    for size, extent, centre in ((image_size[0], full_w * share, point[0]), (image_size[1], full_h * share, point[1])):
        free = size - extent
        anchors.append(float(np.clip((centre - extent / 2) / free, 0.0, 1.0)) if free > 1e-9 else 0.5)
    return anchors[0], anchors[1]


def camera_path(kind: str, image_size: tuple[int, int], frame_size: tuple[int, int], frames: int,
                rng: np.random.Generator, focus: tuple[float, float] | None = None) -> list[Window]:
    """The camera window of each frame (every one inside the image).

    ``pan``: a window of 55-70% moves at constant speed from one side of the image to the other;
    ``zoom-in``: from ~95% around the centre to ~55% around ``focus`` (eased); ``zoom-out``: the
    reverse; ``pan-zoom``: between ~80% at one corner and ~58% at the opposite one (eased).
    Windows between the two ends are interpolated, so they stay inside the image.
    """
    focus = focus or (image_size[0] / 2, image_size[1] / 2)
    place = lambda share, ax, ay: place_window(image_size, frame_size, share, ax, ay)  # noqa: E731
    if kind == "pan":
        share, ay, left = rng.uniform(0.55, 0.70), rng.uniform(0.2, 0.8), bool(rng.random() < 0.5)
        start, end, shape = place(share, 0.0, ay), place(share, 1.0, ay), (lambda t: t)
        if not left:
            start, end = end, start
    elif kind in ("zoom-in", "zoom-out"):
        wide, tight = rng.uniform(0.92, 0.98), rng.uniform(0.52, 0.6)
        start, end, shape = place(wide, 0.5, 0.5), place(tight, *_anchor(image_size, frame_size, tight, focus)), ease
        if kind == "zoom-out":
            start, end = end, start
    elif kind == "pan-zoom":
        ax, ay = float(rng.random() < 0.5), float(rng.random() < 0.5)
        start, end, shape = place(rng.uniform(0.75, 0.85), ax, ay), place(rng.uniform(0.55, 0.62), 1 - ax, 1 - ay), ease
        if rng.random() < 0.5:
            start, end = end, start
    else:
        raise YoloxkitError(f"camera kind must be one of {', '.join(CAMERA_KINDS)}, got {kind!r}")
    windows = []
    for k in range(frames):
        s = shape(k / max(frames - 1, 1))
        windows.append(tuple(float(a + (b - a) * s) for a, b in zip(start, end)))
    return windows


def window_matrix(window: Window, frame_size: tuple[int, int]) -> np.ndarray:
    """The 2x3 ``cv2.warpAffine`` matrix drawing ``window`` onto the frame (:func:`map_box`'s map)."""
    x0, y0, w, h = window
    sx, sy = frame_size[0] / w, frame_size[1] / h
    return np.array([[sx, 0.0, -x0 * sx + 0.5 * (sx - 1)], [0.0, sy, -y0 * sy + 0.5 * (sy - 1)]], np.float64)


def map_box(box: Box, window: Window, frame_size: tuple[int, int]) -> Box:
    """Box ``(x1, y1, x2, y2)`` of the background image in frame coordinates (not clipped)."""
    x0, y0, w, h = window
    sx, sy = frame_size[0] / w, frame_size[1] / h
    return (box[0] - x0) * sx, (box[1] - y0) * sy, (box[2] - x0) * sx, (box[3] - y0) * sy


def clip_box(box: Box, frame_size: tuple[int, int]) -> Box:
    """``box`` clipped to the frame (``x2 <= x1`` or ``y2 <= y1`` when nothing is left)."""
    return (min(max(box[0], 0.0), frame_size[0]), min(max(box[1], 0.0), frame_size[1]),
            max(min(box[2], float(frame_size[0])), 0.0), max(min(box[3], float(frame_size[1])), 0.0))


def _area(box: Box) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def box_visibility(box: Box, covered: np.ndarray) -> tuple[Box, float, float]:
    """``(clipped box, inside, visibility)`` of an unclipped frame ``box`` with ``covered`` (bool
    ``[H, W]``: pixels of things in front). ``inside`` is the share of ``box`` inside the frame;
    visibility the clipped box's area not covered (pixels it touches) over the area of ``box``."""
    height, width = covered.shape
    clipped = clip_box(box, (width, height))
    full = _area(box)
    if _area(clipped) <= 0 or full <= 0:
        return clipped, 0.0, 0.0
    x1, y1 = int(math.floor(clipped[0])), int(math.floor(clipped[1]))
    x2, y2 = max(int(math.ceil(clipped[2])), x1 + 1), max(int(math.ceil(clipped[3])), y1 + 1)
    free = 1.0 - float(covered[y1:y2, x1:x2].mean())
    return clipped, _area(clipped) / full, _area(clipped) * free / full


@dataclass(frozen=True)
class Occluder:
    """A full-height bar drawn in front of everything: left edge ``x_start`` at the first frame,
    ``x_end`` at the last (equal for a static pillar), ``width`` pixels; flat ``colours[0]``, or
    horizontal stripes of ``stripe`` pixels alternating the two colours."""

    x_start: float
    x_end: float
    width: int
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    stripe: int

    def columns(self, t: float, frame_width: int) -> tuple[int, int]:
        """The frame columns ``[c1, c2)`` it covers at time ``t`` in [0, 1]."""
        left = round(self.x_start + (self.x_end - self.x_start) * t)
        return max(0, left), min(frame_width, left + self.width)

    def info(self) -> dict:
        """Its description for ``tracking_set.json``."""
        return {"kind": "pillar" if self.x_start == self.x_end else "bar", "x_start": round(self.x_start, 2),
                "x_end": round(self.x_end, 2), "width": self.width, "stripe": self.stripe,
                "colours": [list(c) for c in self.colours]}


def plan_occluder(kind: str, frame_size: tuple[int, int], rng: np.random.Generator) -> Occluder:
    """A static pillar (6-12% of the frame width, in its middle 40%) for panning cameras, a bar
    sliding across the frame at constant speed for zooms."""
    fw = frame_size[0]
    width = max(2, round(fw * rng.uniform(0.06, 0.12)))
    if kind in ("pan", "pan-zoom"):
        x_start = x_end = float(rng.uniform(0.3, 0.7) * fw - width / 2)
    else:
        x_start, x_end = float(rng.uniform(0.05, 0.3) * fw), float(rng.uniform(0.7, 0.95) * fw - width)
        if rng.random() < 0.5:
            x_start, x_end = x_end, x_start
    colours = tuple(tuple(int(v) for v in rng.integers(30, 226, size=3)) for _ in range(2))
    stripe = int(rng.integers(6, 20)) if rng.random() < 0.5 else 0
    return Occluder(x_start, x_end, width, colours, stripe)


@dataclass(frozen=True)
class Mover:
    """A pasted cut-out moving on a straight line at constant speed: top-left corner
    ``start + velocity * (k - k0)`` at frame ``k`` (0-based), rounded to pixels."""

    cutout: ScaledCutout
    start: tuple[float, float]
    velocity: tuple[float, float]
    k0: float

    def corner(self, k: int) -> tuple[int, int]:
        """Top-left corner of the patch in frame ``k``."""
        return (round(self.start[0] + self.velocity[0] * (k - self.k0)),
                round(self.start[1] + self.velocity[1] * (k - self.k0)))


def plan_mover(scaled: ScaledCutout, frame_size: tuple[int, int], frames: int, rng: np.random.Generator) -> Mover:
    """A path entering fully outside one edge (left/right 3 times in 4, else top/bottom) and
    leaving through the opposite one, crossing in 70-90% of the sequence from frame ~0."""
    fw, fh = frame_size
    ph, pw = scaled.mask.shape
    a, b = rng.uniform(0.0, 1.0, size=2)
    if rng.random() < 0.75:
        start, end = (-pw, a * max(fh - ph, 0)), (fw, b * max(fh - ph, 0))
    else:
        start, end = (a * max(fw - pw, 0), -ph), (b * max(fw - pw, 0), fh)
    if rng.random() < 0.5:
        start, end = end, start
    span = rng.uniform(0.7, 0.9) * max(frames - 1, 1)
    k0 = rng.uniform(-0.1, 0.15) * max(frames - 1, 1)
    velocity = ((end[0] - start[0]) / span, (end[1] - start[1]) / span)
    return Mover(scaled, (float(start[0]), float(start[1])), (float(velocity[0]), float(velocity[1])), float(k0))


@dataclass(frozen=True)
class SceneObject:
    """An object of the background image: its COCO box as ``(x1, y1, x2, y2)`` image pixels."""

    box: Box
    annotation_id: int
    category_id: int


@dataclass(frozen=True)
class SequencePlan:
    """Everything a sequence's frames follow from (made by :func:`.sequences.plan_sequence`)."""

    kind: str
    image: np.ndarray
    windows: list[Window]
    frame_size: tuple[int, int]
    scene: tuple[SceneObject, ...]
    movers: tuple[Mover, ...]
    occluder: Occluder | None


def _paste(canvas: np.ndarray, top: np.ndarray, scaled: ScaledCutout, x: int, y: int, label: int):
    """Alpha-paste ``scaled`` with its top-left at ``(x, y)``, clipped to the frame; the frame
    region and patch slices it covers, or ``None`` when it is outside."""
    fh, fw = canvas.shape[:2]
    ph, pw = scaled.mask.shape
    x1, y1, x2, y2 = max(0, x), max(0, y), min(fw, x + pw), min(fh, y + ph)
    if x2 <= x1 or y2 <= y1:
        return None
    sub = (slice(y1 - y, y2 - y), slice(x1 - x, x2 - x))
    a = scaled.alpha[sub][..., None]
    roi = canvas[y1:y2, x1:x2]
    canvas[y1:y2, x1:x2] = np.clip(np.rint(a * scaled.patch[sub] + (1.0 - a) * roi), 0, 255).astype(np.uint8)
    top[y1:y2, x1:x2][scaled.mask[sub]] = label
    return (x1, y1, x2, y2), sub


def _draw_occluder(canvas: np.ndarray, top: np.ndarray, occluder: Occluder, t: float, label: int) -> None:
    c1, c2 = occluder.columns(t, canvas.shape[1])
    if c2 <= c1:
        return
    canvas[:, c1:c2] = occluder.colours[0]
    if occluder.stripe:
        rows = (np.arange(canvas.shape[0]) // occluder.stripe) % 2 == 1
        canvas[rows, c1:c2] = occluder.colours[1]
    top[:, c1:c2] = label


def _mover_row(top: np.ndarray, mover: Mover, x: int, y: int, placed, label: int):
    """``(clipped box, visibility)`` of a pasted mover, or ``None`` if it gets no row: its box is
    the tight box of its mask inside the frame, its visibility the share of its mask seen."""
    fh, fw = top.shape
    ph, pw = mover.cutout.mask.shape
    if placed is None or _area(clip_box((x, y, x + pw, y + ph), (fw, fh))) < MIN_INSIDE * pw * ph:
        return None
    (x1, y1, x2, y2), sub = placed
    mask = mover.cutout.mask[sub]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    box = (float(x1 + cols[0]), float(y1 + rows[0]), float(x1 + cols[-1] + 1), float(y1 + rows[-1] + 1))
    if box[2] - box[0] < MIN_SIDE or box[3] - box[1] < MIN_SIDE:
        return None
    seen = int(((top[y1:y2, x1:x2] == label) & mask).sum())
    return box, seen / float(mover.cutout.mask.sum())


def render_sequence(plan: SequencePlan) -> Iterator[tuple[np.ndarray, list[tuple[int, Box, float]]]]:
    """Each frame: its BGR image and ``(object, clipped box, visibility)`` rows of the objects
    that get one (objects: ``plan.scene`` first, then ``plan.movers``)."""
    fw, fh = plan.frame_size
    frames = len(plan.windows)
    for k, window in enumerate(plan.windows):
        t = k / max(frames - 1, 1)
        canvas = cv2.warpAffine(plan.image, window_matrix(window, plan.frame_size), (fw, fh),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        top = np.full((fh, fw), -1, np.int16)
        placed = []
        for label, mover in enumerate(plan.movers):
            x, y = mover.corner(k)
            placed.append((x, y, _paste(canvas, top, mover.cutout, x, y, label)))
        if plan.occluder is not None:
            _draw_occluder(canvas, top, plan.occluder, t, len(plan.movers))
        rows = []
        covered = top >= 0
        for index, obj in enumerate(plan.scene):
            clipped, inside, visible = box_visibility(map_box(obj.box, window, plan.frame_size), covered)
            if inside >= MIN_INSIDE and clipped[2] - clipped[0] >= MIN_SIDE and clipped[3] - clipped[1] >= MIN_SIDE:
                rows.append((index, clipped, visible))
        for label, (mover, (x, y, where)) in enumerate(zip(plan.movers, placed)):
            found = _mover_row(top, mover, x, y, where, label)
            if found is not None:
                rows.append((len(plan.scene) + label, *found))
        yield canvas, rows
