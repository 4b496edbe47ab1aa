"""Small synthetic datasets (COCO, VOC, YOLO-txt) written into a temporary directory for the
data tests: solid-colour images with known rectangles."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

# name, class colours (BGR) used to paint each object's rectangle
COLOURS = {"cat": (0, 0, 255), "dog": (0, 255, 0), "bird": (255, 0, 0)}


def paint(path: Path, width: int, height: int, boxes, classes, names) -> None:
    """Write a grey image with each box filled with its class colour."""
    image = np.full((height, width, 3), 90, dtype=np.uint8)
    for (x1, y1, x2, y2), c in zip(boxes, classes):
        image[int(y1): int(y2), int(x1): int(x2)] = COLOURS[names[c]]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def voc_xml(file_name: str, width: int | None, height: int | None, objects) -> str:
    """``objects``: (name, xmin, ymin, xmax, ymax, difficult) in VOC's 1-based pixels."""
    size = "" if width is None else f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
    body = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{e}</ymax></bndbox></object>"
        for n, a, b, c, e, d in objects
    )
    return f"<annotation><filename>{file_name}</filename>{size}{body}</annotation>"


def make_voc(root: Path, splits: dict[str, dict[str, list]], labels: list[str] | None = None,
             sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    """``splits``: split -> {image id: [(name, xmin, ymin, xmax, ymax, difficult), ...]}."""
    names = sorted(COLOURS)
    for split, images in splits.items():
        for image_id, objects in images.items():
            width, height = (sizes or {}).get(image_id, (96, 64))
            boxes = [(o[1] - 1, o[2] - 1, o[3] - 1, o[4] - 1) for o in objects if o[0] in COLOURS]
            classes = [names.index(o[0]) for o in objects if o[0] in COLOURS]
            paint(root / "JPEGImages" / f"{image_id}.jpg", width, height, boxes, classes, names)
            (root / "Annotations").mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / f"{image_id}.xml").write_text(voc_xml(f"{image_id}.jpg", width, height, objects))
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(i + "\n" for i in images))
    if labels is not None:
        (root / "labels.txt").write_text("".join(n + "\n" for n in labels))
    return root


def make_yolo(root: Path, splits: dict[str, dict[str, list]], names: list[str], yaml_names=None,
              write_yaml: bool = True, size: tuple[int, int] = (100, 80)) -> Path:
    """``splits``: split -> {stem: [(class, x1, y1, x2, y2) in pixels]}; labels are normalised."""
    width, height = size
    for split, images in splits.items():
        for stem, objects in images.items():
            paint(root / "images" / split / f"{stem}.png", width, height, [o[1:] for o in objects],
                  [o[0] for o in objects], names)
            lines = [f"{c} {(a + b) / 2 / width} {(y + z) / 2 / height} {(b - a) / width} {(z - y) / height}"
                     for c, a, y, b, z in objects]
            label = root / "labels" / split / f"{stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(line + "\n" for line in lines))
    if write_yaml:
        import yaml

        config = {key: f"images/{split}" for key in ("train", "val") for split in splits if split.startswith(key)}
        config["names"] = yaml_names if yaml_names is not None else names
        (root / "data.yaml").write_text(yaml.safe_dump(config))
    return root


def make_coco(root: Path, split: str, images: dict[str, list], names: list[str],
              size: tuple[int, int] = (120, 90), category_ids: list[int] | None = None) -> Path:
    """``images``: file name -> [(class, x1, y1, x2, y2)] (pixels)."""
    width, height = size
    ids = category_ids or list(range(1, len(names) + 1))
    content = {"images": [], "annotations": [], "categories": [{"id": i, "name": n} for i, n in zip(ids, names)]}
    for k, (file_name, objects) in enumerate(images.items(), start=1):
        paint(root / split / file_name, width, height, [o[1:] for o in objects], [o[0] for o in objects], names)
        content["images"].append({"id": k, "file_name": file_name, "width": width, "height": height})
        for c, x1, y1, x2, y2 in objects:
            content["annotations"].append({"id": len(content["annotations"]) + 1, "image_id": k,
                                           "category_id": ids[c], "bbox": [x1, y1, x2 - x1, y2 - y1],
                                           "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(content))
    return root
