"""The result of detection on one image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..imaging import as_bgr, read_image
from .draw import draw_detections

__all__ = ["Detections"]


@dataclass(eq=False)
class Detections:
    """Detections on one image, in original-image pixels, sorted by decreasing score.

    ``boxes`` float32 ``[N, 4]`` xyxy; ``scores`` float32 ``[N]`` (objectness × class
    probability); ``class_ids`` int64 ``[N]`` indexing ``names`` (all class names of the
    model). ``image`` is the source file name (``None`` for an array) and ``width``/``height``
    the original image size. ``track_ids`` int64 ``[N]`` holds each detection's track id when
    a :class:`yoloxkit.Tracker` made it (``None`` otherwise).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: list[str]
    image: str | None = None
    width: int = 0
    height: int = 0
    source: Any = field(default=None, repr=False)  # path or array the image came from, for plot()
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if not len(self.boxes) == len(self.scores) == len(self.class_ids):
            raise ValueError(
                f"boxes, scores and class_ids differ in length: {len(self.boxes)}, {len(self.scores)},"
                f" {len(self.class_ids)}"
            )
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
            if len(self.track_ids) != len(self.scores):
                raise ValueError(f"{len(self.track_ids)} track_ids for {len(self.scores)} detections")

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        labels = self.labels()
        if self.track_ids is not None:
            labels = [f"#{t} {label}" for t, label in zip(self.track_ids.tolist(), labels)]
        found = ", ".join(labels) or "nothing"
        where = self.image if self.image is not None else "array"
        return f"Detections({where} {self.width}x{self.height}: {len(self)} found: {found})"

    @property
    def class_names(self) -> list[str]:
        """Class name of each detection."""
        return [self.names[i] if 0 <= i < len(self.names) else str(i) for i in self.class_ids.tolist()]

    def labels(self) -> list[str]:
        """``"name score"`` strings, e.g. ``["dog 0.93", "bicycle 0.88"]``."""
        return [f"{name} {score:.2f}" for name, score in zip(self.class_names, self.scores.tolist())]

    def filter(self, conf: float | None = None, classes: Sequence[int | str] | None = None) -> "Detections":
        """A new ``Detections`` with ``score >= conf`` and class in ``classes`` (ids or names)."""
        keep = np.ones(len(self), dtype=bool)
        if conf is not None:
            keep &= self.scores >= conf
        if classes is not None:
            ids = []
            for c in classes:
                if isinstance(c, str):
                    if c not in self.names:
                        raise ValueError(f"unknown class {c!r} in filter(classes=...)")
                    ids.append(self.names.index(c))
                else:
                    ids.append(int(c))
            keep &= np.isin(self.class_ids, ids)
        return self.select(keep)

    def select(self, index: np.ndarray | Sequence[int]) -> "Detections":
        """A new ``Detections`` of the detections picked by ``index`` (a boolean mask or indices)."""
        index = np.asarray(index)
        tracks = None if self.track_ids is None else self.track_ids[index]
        return Detections(
            self.boxes[index], self.scores[index], self.class_ids[index], self.names, self.image, self.width,
            self.height, self.source, tracks,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md §3 (plain Python types, boxes rounded to 0.01 px); with
        track ids, each detection also has ``"track_id"``."""
        detections = [
            {"box": [round(float(v), 2) for v in box], "score": round(float(score), 6), "class_id": int(cid),
             "name": name}
            for box, score, cid, name in zip(self.boxes, self.scores, self.class_ids, self.class_names)
        ]
        if self.track_ids is not None:
            for record, track_id in zip(detections, self.track_ids.tolist()):
                record["track_id"] = int(track_id)
        return {"image": self.image, "width": int(self.width), "height": int(self.height), "detections": detections}

    def plot(self, image: np.ndarray | None = None, trails: dict[int, Sequence[tuple[float, float]]] | None = None
             ) -> np.ndarray:
        """An annotated BGR copy of the image (``image``, or the source this came from). With
        track ids, boxes are coloured by identity and labelled ``#id name score``; ``trails``
        (track id -> recent box centres, oldest first) are drawn as lines."""
        if image is None:
            if self.source is None:
                raise ValueError("plot() needs the image: this result has no source; pass image=")
            image = self.source if isinstance(self.source, np.ndarray) else read_image(self.source)
        image = as_bgr(image, name="image")
        return draw_detections(image, self.boxes, self.scores, self.class_ids, self.names, self.track_ids, trails)
