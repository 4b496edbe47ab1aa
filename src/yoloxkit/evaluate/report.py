"""Evaluation results: the numbers, text tables and the ``--json-out`` document."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..io import atomic_write_text
from .duplicates import DuplicateStats

__all__ = ["EvalResult", "format_table", "ignored_boxes", "per_class_table"]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], groups: int = 1) -> str:
    """Plain-text table; ``groups > 1`` lays the rows out in that many side-by-side column groups."""
    text_rows = [[_cell(v) for v in row] for row in rows]
    groups = max(1, min(groups, len(text_rows)))
    per_group = math.ceil(len(text_rows) / groups) if text_rows else 0
    chunks = [text_rows[i * per_group : (i + 1) * per_group] for i in range(groups)]
    widths = [
        max([len(h)] + [len(r[c]) for r in text_rows]) for c, h in enumerate(headers)
    ]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(cells, widths))
        )

    blank = [""] * len(headers)
    lines = [" | ".join([render(headers)] * groups)]
    lines.append("-+-".join(["-" * len(render(headers))] * groups))
    for i in range(per_group):
        line = [render(chunk[i] if i < len(chunk) else blank) for chunk in chunks]
        lines.append(" | ".join(line).rstrip())
    return "\n".join(lines)


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


def ignored_boxes(per_class_detail: Mapping[str, Mapping[str, Any]]) -> int:
    """The crowd/difficult boxes left out of the metric, over all classes."""
    return sum(int(d.get("ignored") or 0) for d in per_class_detail.values())


def per_class_table(kind: str, per_class: Mapping[str, Any], per_class_detail: Mapping[str, Mapping[str, Any]]) -> str:
    """The per-class table of a result, from its fields or from its ``to_json()`` document:
    class, ``gt`` (and ``ignored`` when there are any), then the kind's AP columns."""
    columns = ["AP", "AP50"] if kind == "coco" else ["AP50", "AP50_voc07", "AP50_95"]
    counts = ["gt", "ignored"] if ignored_boxes(per_class_detail) else ["gt"]
    rows = []
    for name, value in per_class.items():
        detail = per_class_detail.get(name, {})
        values = [value if c == columns[0] else detail.get(c) for c in columns]
        rows.append([name] + [detail.get(c, "") for c in counts] + values)
    groups = (3 if kind == "coco" else 2) if len(rows) > 12 else 1
    return format_table(["class"] + counts + columns, rows, groups=groups)


@dataclass
class EvalResult:
    """What :func:`yoloxkit.evaluate.evaluate` returns. All values are percentages.

    ``kind`` is ``"coco"`` (12 COCO numbers, per-class AP@[.5:.95]) or ``"voc"`` (``mAP50``,
    ``mAP50_voc07``, ``mAP50_95``; per-class AP@0.5). ``per_class[name]`` is ``None`` for a class
    without ground truth in the split or unknown to the model. ``per_class_detail[name]["gt"]``
    counts the ground-truth boxes that are scored; crowd (COCO ``iscrowd``) and difficult (VOC)
    boxes are not among them (they neither reward nor penalise a detection) and are counted in
    ``["ignored"]``. ``skipped_images``: paths of unreadable images, left out of the metrics
    together with their ground truth (``num_images`` counts the evaluated images only).
    ``duplicates``: the duplicate measure (:mod:`.duplicates`: ground-truth boxes matched by more
    than one detection with score >= 0.3 at IoU >= 0.5), in the JSON as ``duplicates@0.3``
    (percent) and ``duplicates`` (its counts). ``nms_free``: whether the detector ran without
    NMS (None when unknown, e.g. a plain predict function). ``plots_error``: why the plots asked
    for could not be written (one line naming the file), None when they were or none were asked.
    """

    kind: str
    metrics: dict[str, float]
    per_class: dict[str, float | None]
    # Extra per-class columns: name -> {"gt": boxes, "AP50": ..., ...}.
    per_class_detail: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    num_images: int = 0
    num_predictions: int = 0
    unknown_classes: list[str] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    skipped_images: list[str] = field(default_factory=list)
    duplicates: DuplicateStats | None = None
    nms_free: bool | None = None
    plots_error: str | None = None

    @property
    def primary_key(self) -> str:
        return "AP" if self.kind == "coco" else "mAP50"

    @property
    def primary(self) -> float:
        """COCO AP@[.5:.95] for COCO-metric results, VOC mAP@0.5 (area) for VOC-metric results."""
        return self.metrics[self.primary_key]

    def to_json(self) -> dict[str, Any]:
        """The ``--json-out`` document (DESIGN.md §3)."""
        doc: dict[str, Any] = {k: round(v, 4) for k, v in self.metrics.items()}
        doc["per_class"] = {k: (None if v is None else round(v, 4)) for k, v in self.per_class.items()}
        doc["metric"] = self.kind
        doc["num_images"] = self.num_images
        doc["skipped_images"] = list(self.skipped_images)
        if self.duplicates is not None:
            dup = self.duplicates
            doc[dup.key] = round(dup.fraction * 100.0, 4)
            doc["duplicates"] = {"conf": dup.conf, "iou": dup.iou, "gts": dup.gts, "duplicated": dup.duplicated}
        doc["nms_free"] = self.nms_free
        doc["per_class_detail"] = {
            name: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
            for name, row in self.per_class_detail.items()
        }
        return doc

    def save_json(self, path: str | os.PathLike, what: str | None = None) -> Path:
        """Write :meth:`to_json` atomically (``what``, e.g. ``--json-out``, names it in errors)."""
        return atomic_write_text(json.dumps(self.to_json(), indent=2) + "\n", path, what=what)

    def format(self) -> str:
        """The summary lines followed by the per-class table."""
        ignored = ignored_boxes(self.per_class_detail)
        title = "per-class AP (%)" if self.kind == "coco" else "per-class VOC AP (%)"
        parts = list(self.summary)
        parts += ["", f"{title}, {self.num_images} images:", per_class_table(self.kind, self.per_class, self.per_class_detail)]
        if ignored:
            boxes = "1 crowd/difficult box" if ignored == 1 else f"{ignored} crowd/difficult boxes"
            parts.append(f"gt: ground-truth boxes scored; ignored: {boxes}, left out of the metric (a detection on "
                         "one is neither a hit nor a false positive; check-data counts them among its boxes)")
        else:
            parts.append("gt: ground-truth boxes scored (no crowd/difficult boxes to ignore)")
        if self.duplicates is not None:
            dup = self.duplicates
            how = "" if self.nms_free is None else ", NMS-free" if self.nms_free else ", with NMS"
            parts.append(f"{dup.key}: {dup.fraction * 100.0:.2f}% of {dup.gts} gt boxes matched by more than one"
                         f" detection (score >= {dup.conf:g}, IoU >= {dup.iou:g}{how})")
        if self.unknown_classes:
            parts.append(f"not evaluated (unknown to the model): {', '.join(self.unknown_classes)}")
        if self.skipped_images:
            shown = ", ".join(Path(p).name for p in self.skipped_images[:5])
            more = f", ... ({len(self.skipped_images)} in all)" if len(self.skipped_images) > 5 else ""
            parts.append(f"skipped {_images(len(self.skipped_images))} that cannot be read ({shown}{more}); "
                         "left out of the metrics together with their ground truth")
        return "\n".join(parts)
