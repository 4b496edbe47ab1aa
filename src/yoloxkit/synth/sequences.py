"""Short multi-object-tracking sequences with known identities, generated from a COCO split.

Each sequence is one real image of the split seen through a moving camera, with objects cut out
of *other* images crossing it and an occluder in front, written in the MOTChallenge layout that
TrackEval and the MOT tools read::

    out/seqmap.txt            "name", then one sequence name a line
    out/tracking_set.json     how each sequence was made (background, camera, objects, ids)
    out/SYN-01/seqinfo.ini    [Sequence] name, imDir, frameRate (30), seqLength, imWidth, imHeight, imExt
    out/SYN-01/img1/000001.jpg ...  JPEG quality 95, frames numbered from 1
    out/SYN-01/gt/gt.txt      frame,id,x,y,w,h,mark,class,visibility

- **Background and camera** (:mod:`.sequence_render`): a window with the frame's aspect ratio,
  always inside the image (no padding), is warped onto the frame; camera kinds cycle over the
  sequences: ``pan``, ``zoom-in``, ``zoom-out``, ``pan-zoom``. The image's non-crowd COCO
  annotations are the *scene objects*; their boxes are mapped through each frame's window.
- **Moving objects**: ``moving_objects`` cut-outs (:mod:`.cutouts`) scaled to a longest side of
  80-200 px (at 480 px of frame height, proportionally otherwise), alpha-pasted on straight
  constant-speed paths that enter through one edge and leave through the opposite one. Their box
  is the tight box of their pasted mask inside the frame.
- **Occluder**: a full-height pillar (static for panning cameras, sliding for zooms), 6-12% of
  the frame width, drawn in front of everything.

Ground truth: z-order is scene objects < cut-outs (paste order) < occluder. An object has a row
in a frame when its clipped box is at least 4x4 px and at least 40% of its unclipped box lies in
the frame. Visibility is the uncovered part of its clipped box over its unclipped box (scene
objects; for a cut-out, whose mask is known, the share of its mask pixels seen); ``mark`` is 0
(MOTChallenge "ignore") when visibility < 0.25, else 1; ``class`` is always 1 (class-agnostic).
Ids are 1.. in order of first appearance. Boxes are written with 2 decimals, visibility with 3
(the mark follows the written value). Everything is drawn from ``numpy.random.default_rng``
seeded with ``(seed, sequence index)``, so the same arguments give the same files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..data.mot_sequence import seqinfo_text
from ..errors import DatasetError, YoloxkitError
from ..imaging.read import read_image
from ..io import atomic_path, atomic_write_text
from .cutouts import Cutout, SourceSplit, cut_out_objects, read_source, scale_cutout
from .sequence_render import CAMERA_KINDS, SceneObject, SequencePlan, camera_path, plan_mover, plan_occluder, \
    render_sequence
from .small_objects import _check_out, _check_range

__all__ = ["TrackingSet", "make_tracking_set", "plan_sequence", "usable_backgrounds"]

FRAME_RATE = 30
IGNORE_BELOW = 0.25  # visibility under this: mark 0
MIN_BACKGROUND_BOX = 24  # a background needs objects at least this wide and high
MIN_SCENE_SIDE = 8.0  # scene objects never this large on their short side are left out
MOVER_SIZE = (80, 200)  # longest side of a moving cut-out at 480 px of frame height
_JPEG = [int(cv2.IMWRITE_JPEG_QUALITY), 95]


@dataclass(frozen=True)
class TrackingSet:
    """What :func:`make_tracking_set` wrote: ``rows`` GT rows (``ignored`` of them mark 0) of
    ``identities`` ids over all sequences."""

    out: Path
    split: str
    sequences: tuple[str, ...]
    frames: int
    frame_size: tuple[int, int]
    rows: int
    identities: int
    ignored: int

    @property
    def seqmap(self) -> Path:
        return self.out / "seqmap.txt"

    def describe(self) -> str:
        """One line: sequences, frames, rows and ids."""
        w, h = self.frame_size
        return (f"wrote {len(self.sequences)} sequences ({self.sequences[0]}..{self.sequences[-1]}) of "
                f"{self.frames} frames at {w}x{h} from {self.split} to {self.out}: {self.rows} GT rows, "
                f"{self.identities} identities, {self.ignored} rows marked 0 (visibility < {IGNORE_BELOW}); "
                f"seqmap {self.seqmap}.")


def _usable(ann: dict) -> bool:
    return not ann.get("iscrowd", 0) and min(ann["bbox"][2], ann["bbox"][3]) >= MIN_BACKGROUND_BOX


def usable_backgrounds(source: SourceSplit, seed: int) -> list[dict]:
    """Background images in the order sequences take them (cycling): those with at least 2
    non-crowd objects of at least 24x24 px, shuffled by ``seed``, then those with one."""
    counts: dict[int, int] = {}
    for ann in source.content.get("annotations") or []:
        if _usable(ann):
            counts[int(ann["image_id"])] = counts.get(int(ann["image_id"]), 0) + 1
    images = sorted((im for im in source.content.get("images") or [] if int(im["id"]) in source.paths),
                    key=lambda im: int(im["id"]))
    rng = np.random.default_rng(seed)
    ordered = []
    for group in ([im for im in images if counts.get(int(im["id"]), 0) >= 2],
                  [im for im in images if counts.get(int(im["id"]), 0) == 1]):
        ordered += [group[int(i)] for i in rng.permutation(len(group))]
    return ordered


def plan_sequence(source: SourceSplit, background: dict, cutouts: list[Cutout], index: int, seed: int,
                  frames: int, frame_size: tuple[int, int], moving_objects: tuple[int, int],
                  occluders: bool) -> SequencePlan:
    """Camera, scene objects, moving cut-outs and occluder of sequence ``index`` (0-based)."""
    rng = np.random.default_rng((seed, index))
    kind = CAMERA_KINDS[index % len(CAMERA_KINDS)]
    image = read_image(source.paths[int(background["id"])])
    size = (image.shape[1], image.shape[0])
    anns = sorted((a for a in source.content.get("annotations") or []
                   if int(a["image_id"]) == int(background["id"]) and not a.get("iscrowd", 0)),
                  key=lambda a: int(a["id"]))
    big = [a for a in anns if _usable(a)] or anns
    x, y, w, h = big[int(rng.integers(len(big)))]["bbox"] if big else (0, 0, size[0], size[1])
    windows = camera_path(kind, size, frame_size, frames, rng, focus=(x + w / 2, y + h / 2))
    zoom = max(frame_size[0] / window[2] for window in windows)
    scene = tuple(SceneObject((float(a["bbox"][0]), float(a["bbox"][1]), float(a["bbox"][0] + a["bbox"][2]),
                               float(a["bbox"][1] + a["bbox"][3])), int(a["id"]), int(a["category_id"]))
                  for a in anns if min(a["bbox"][2], a["bbox"][3]) * zoom >= MIN_SCENE_SIDE)
    pool = [c for c in cutouts if c.image_id != int(background["id"])]
    wanted = min(int(rng.integers(moving_objects[0], moving_objects[1] + 1)), len(pool))
    movers = []
    unit = min(frame_size) / 480
    for pick in rng.permutation(len(pool))[:wanted] if wanted else []:
        cutout = pool[int(pick)]
        source_side = max(cutout.box[2] - cutout.box[0], cutout.box[3] - cutout.box[1])
        longest = min(rng.uniform(*MOVER_SIZE) * unit, 0.45 * min(frame_size), 2.5 * source_side)
        scaled = scale_cutout(cutout, max(8, round(longest)))
        if scaled is not None:
            movers.append(plan_mover(scaled, frame_size, frames, rng))
    occluder = plan_occluder(kind, frame_size, rng) if occluders else None
    return SequencePlan(kind, image, windows, frame_size, scene, tuple(movers), occluder)


def _check_arguments(sequences, frames, frame_size, moving_objects) -> tuple[int, int, tuple, tuple]:
    try:
        sequences, frames = int(sequences), int(frames)
        width, height = (int(v) for v in frame_size)
    except (TypeError, ValueError):
        raise YoloxkitError(f"sequences and frames must be integers and frame_size a (width, height) pair, "
                            f"got {sequences!r}, {frames!r}, {frame_size!r}") from None
    if sequences < 1:
        raise YoloxkitError(f"sequences must be at least 1, got {sequences}")
    if frames < 2 or frames > 999999:
        raise YoloxkitError(f"frames must be in 2..999999 (a sequence needs motion), got {frames}")
    if not (64 <= width <= 8192 and 64 <= height <= 8192):
        raise YoloxkitError(f"frame_size: {width}x{height} is outside 64..8192 pixels a side")
    return sequences, frames, (width, height), _check_range("moving_objects", moving_objects, 0)


def _gt_lines(rows_per_frame: list[list[tuple[int, tuple, float]]]) -> tuple[list[str], list[int]]:
    """GT lines sorted by frame then id, and the object index of each id (ids in order of first appearance)."""
    order: list[int] = []
    for rows in rows_per_frame:
        order += [obj for obj, _, _ in sorted(rows, key=lambda r: r[0]) if obj not in order]
    ids = {obj: i + 1 for i, obj in enumerate(order)}
    lines = []
    for frame, rows in enumerate(rows_per_frame, start=1):
        for obj, (x1, y1, x2, y2), visible in sorted(rows, key=lambda r: ids[r[0]]):
            visible = round(min(max(visible, 0.0), 1.0), 3)
            mark = 0 if visible < IGNORE_BELOW else 1
            lines.append(f"{frame},{ids[obj]},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{mark},1,{visible:.3f}")
    return lines, order


def _write_sequence(plan: SequencePlan, seq_dir: Path, bar) -> tuple[list[str], list[int]]:
    rows_per_frame = []
    for k, (canvas, rows) in enumerate(render_sequence(plan), start=1):
        ok, encoded = cv2.imencode(".jpg", canvas, _JPEG)
        if not ok:  # pragma: no cover - OpenCV always encodes uint8 BGR
            raise YoloxkitError(f"cannot encode frame {k} of {seq_dir}")
        with atomic_path(seq_dir / "img1" / f"{k:06d}.jpg") as tmp:
            tmp.write_bytes(encoded.tobytes())
        rows_per_frame.append(rows)
        bar.update(1)
    lines, order = _gt_lines(rows_per_frame)
    atomic_write_text("".join(f"{line}\n" for line in lines), seq_dir / "gt" / "gt.txt")
    atomic_write_text(seqinfo_text(seq_dir.name, len(plan.windows), plan.frame_size, FRAME_RATE), seq_dir / "seqinfo.ini")
    return lines, order


def _describe(plan: SequencePlan, name: str, background: dict, lines: list[str], order: list[int]) -> dict:
    objects = []
    for i, obj in enumerate(order, start=1):
        if obj < len(plan.scene):
            found = plan.scene[obj]
            objects.append({"id": i, "kind": "scene", "annotation_id": found.annotation_id,
                            "category_id": found.category_id})
        else:
            cutout = plan.movers[obj - len(plan.scene)].cutout.source
            objects.append({"id": i, "kind": "moving", "annotation_id": cutout.annotation_id,
                            "category_id": cutout.category_id, "image_id": cutout.image_id})
    return {
        "name": name, "background_id": int(background["id"]), "background_file": background["file_name"],
        "camera": plan.kind, "camera_start": [round(v, 3) for v in plan.windows[0]],
        "camera_end": [round(v, 3) for v in plan.windows[-1]],
        "moving_annotation_ids": [m.cutout.source.annotation_id for m in plan.movers],
        "occluder": plan.occluder.info() if plan.occluder else None,
        "ids": len(order), "rows": len(lines), "objects": objects,
    }


def make_tracking_set(
    source: str | os.PathLike,
    split: str,
    out: str | os.PathLike,
    sequences: int = 10,
    frames: int = 40,
    frame_size: tuple[int, int] = (640, 480),
    seed: int = 0,
    progress: bool = True,
    moving_objects: tuple[int, int] = (1, 3),
    occluders: bool = True,
) -> TrackingSet:
    """Write ``sequences`` MOTChallenge sequences ``SYN-01``.. into ``out`` (module docstring).

    Args:
        source: COCO dataset directory with instance masks; ``split`` (name or unique prefix)
            gives the backgrounds and the cut-outs.
        out: new or empty directory.
        frames: frames per sequence (>= 2); ``frame_size``: ``(width, height)``, at least 64x64.
        moving_objects: how many cut-outs cross each sequence, drawn uniformly in ``low..high``.
        occluders: draw one occluder per sequence.
    """
    sequences, frames, frame_size, moving_objects = _check_arguments(sequences, frames, frame_size, moving_objects)
    out = Path(out)
    _check_out(out)
    data = read_source(source, split)
    backgrounds = usable_backgrounds(data, seed)
    if not backgrounds:
        raise DatasetError(f"{source}: split {data.split} has no image with a non-crowd object of at least "
                           f"{MIN_BACKGROUND_BOX}x{MIN_BACKGROUND_BOX} px to use as a background")
    cutouts = cut_out_objects(data, min_area=40 * 40) if moving_objects[1] > 0 else []
    if moving_objects[0] > 0 and not cutouts:
        raise DatasetError(f"{source}: split {data.split} has no object masks large enough to cut out")

    names = [f"SYN-{i + 1:02d}" for i in range(sequences)]
    described, total_rows, total_ids, ignored = [], 0, 0, 0
    with tqdm(total=sequences * frames, desc="make-tracking-set", unit="frame", leave=False,
              disable=not progress) as bar:
        for index, name in enumerate(names):
            background = backgrounds[index % len(backgrounds)]
            plan = plan_sequence(data, background, cutouts, index, seed, frames, frame_size, moving_objects,
                                 occluders)
            lines, order = _write_sequence(plan, out / name, bar)
            described.append(_describe(plan, name, background, lines, order))
            total_rows += len(lines)
            total_ids += len(order)
            ignored += sum(line.split(",")[6] == "0" for line in lines)
    info = {"source": str(source), "split": data.split, "seed": seed, "frame_size": list(frame_size),
            "frames": frames, "frame_rate": FRAME_RATE, "moving_objects": list(moving_objects),
            "occluders": bool(occluders), "sequences": described}
    atomic_write_text(json.dumps(info, indent=1), out / "tracking_set.json")
    atomic_write_text("name\n" + "".join(f"{name}\n" for name in names), out / "seqmap.txt")
    return TrackingSet(out, data.split, tuple(names), frames, frame_size, total_rows, total_ids, ignored)
