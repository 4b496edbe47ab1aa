"""Evaluation results: the numbers, text tables and the ``--json-out`` document."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..io import atomic_write_text

__all__ = ["EvalResult", "format_table"]


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


@dataclass
class EvalResult:
    """What :func:`yoloxkit.evaluate.evaluate` returns. All values are percentages.

    ``kind`` is ``"coco"`` (12 COCO numbers, per-class AP@[.5:.95]) or ``"voc"`` (``mAP50``,
    ``mAP50_voc07``, ``mAP50_95``; per-class AP@0.5). ``per_class[name]`` is ``None`` for a class
    without ground truth in the split or unknown to the model.
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
        doc["per_class_detail"] = {
            name: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
            for name, row in self.per_class_detail.items()
        }
        return doc

    def save_json(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(json.dumps(self.to_json(), indent=2) + "\n", path)

    def format(self) -> str:
        """The summary lines followed by the per-class table."""
        columns = ["AP", "AP50"] if self.kind == "coco" else ["AP50", "AP50_voc07", "AP50_95"]
        headers = ["class", "gt"] + columns
        rows = []
        for name, value in self.per_class.items():
            detail = self.per_class_detail.get(name, {})
            values = [value if c == columns[0] else detail.get(c) for c in columns]
            rows.append([name, detail.get("gt", "")] + values)
        title = "per-class AP (%)" if self.kind == "coco" else "per-class VOC AP (%)"
        parts = list(self.summary)
        groups = (3 if self.kind == "coco" else 2) if len(rows) > 12 else 1
        parts += ["", f"{title}, {self.num_images} images:", format_table(headers, rows, groups=groups)]
        if self.unknown_classes:
            parts.append(f"not evaluated (unknown to the model): {', '.join(self.unknown_classes)}")
        return "\n".join(parts)
