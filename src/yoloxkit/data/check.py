"""``check-data``: what a dataset holds and what is wrong with it, split by split."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError, ImageReadError
from ..imaging import image_size, read_image
from .issues import ERROR, WARNING, DataIssue
from .layout import detect_layout, resolve_split
from .load import layout_splits, load_dataset

__all__ = ["SplitReport", "DataReport", "check_dataset", "format_report"]


@dataclass
class SplitReport:
    """Counts and problems of one split (``error`` is set when the split cannot be read at all).

    ``boxes``/``boxes_per_class`` count every box; ``ignored``/``ignored_per_class`` count the
    crowd (COCO ``iscrowd``) and difficult (VOC) ones among them, which training and evaluation
    leave out (``eval``'s ``gt`` column is ``boxes - ignored``).
    """

    split: str
    images: int = 0
    boxes: int = 0
    ignored: int = 0
    images_per_class: list[int] = field(default_factory=list)
    boxes_per_class: list[int] = field(default_factory=list)
    ignored_per_class: list[int] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    issues: list[DataIssue] = field(default_factory=list)
    error: str | None = None


@dataclass
class DataReport:
    source: str
    format: str
    names: list[str]
    splits: list[SplitReport]

    @property
    def errors(self) -> int:
        return sum((s.error is not None) + sum(i.severity == ERROR for i in s.issues) for s in self.splits)

    @property
    def warnings(self) -> int:
        return sum(sum(i.severity == WARNING for i in s.issues) for s in self.splits)


def _check_images(data, decode: bool, progress: bool) -> list[DataIssue]:
    issues = []
    for record in tqdm(data.records, desc=f"images {data.split}", unit="img", leave=False, disable=not progress):
        try:
            if decode:
                height, width = read_image(record.path).shape[:2]
            else:
                width, height = image_size(record.path)
        except ImageReadError as exc:
            kind = "missing_image" if not record.path.exists() else "corrupt_image"
            issues.append(DataIssue(ERROR, kind, str(record.path), "", str(exc)))
            continue
        if (width, height) != (record.width, record.height):
            issues.append(DataIssue(WARNING, "size_mismatch", str(record.path), "",
                                    f"image is {width}x{height} but the annotation says {record.width}x{record.height}"))
    return issues


def check_dataset(path: str | os.PathLike, split: str | None = None, names=None, decode: bool = True,
                  progress: bool = True) -> DataReport:
    """Read every split (or ``split``) without stopping at errors and collect a report.
    ``decode=False`` only reads image headers (faster, but misses truncated files)."""
    layout = detect_layout(path)
    available, aliases = layout_splits(layout)
    if split is not None:  # a bad --split is a usage error, not a data problem
        available = [resolve_split(available, split, "", layout.yaml_file or layout.root, aliases)]
    reports, class_names = [], None
    for name in available:
        try:
            data = load_dataset(path, split=name, names=names, strict=False)
        except DatasetError as exc:
            reports.append(SplitReport(split=name, error=str(exc)))
            continue
        class_names = class_names or data.names
        n = len(data.names)
        report = SplitReport(split=data.split, images=len(data.records), issues=list(data.issues))
        images_per_class = np.zeros(n, dtype=np.int64)
        boxes_per_class = np.zeros(n, dtype=np.int64)
        ignored_per_class = np.zeros(n, dtype=np.int64)
        for record in data.records:
            ids = np.asarray(record.class_ids, dtype=np.int64)
            flags = np.zeros(len(ids), bool) if record.ignore is None else np.asarray(record.ignore, bool)
            valid = (ids >= 0) & (ids < n)
            report.boxes += len(record.class_ids)
            report.ignored += int(flags.sum())
            boxes_per_class += np.bincount(ids[valid], minlength=n)
            ignored_per_class += np.bincount(ids[valid & flags], minlength=n)
            images_per_class[np.unique(ids[valid])] += 1
            if len(record.class_ids) == 0:
                report.unlabelled.append(record.path.name)
        report.images_per_class = images_per_class.tolist()
        report.boxes_per_class = boxes_per_class.tolist()
        report.ignored_per_class = ignored_per_class.tolist()
        report.issues += _check_images(data, decode, progress)
        reports.append(report)
    return DataReport(str(layout.yaml_file or layout.root), layout.format, class_names or [], reports)


def format_report(report: DataReport) -> str:
    """The report as text: a per-class table per split, then every problem, one per line."""
    lines = [f"dataset {report.source} ({report.format}, {len(report.names)} classes)"]
    for split in report.splits:
        lines.append("")
        if split.error is not None:
            lines.append(f"split {split.split}: ERROR {split.error}")
            continue
        boxes = f"{split.boxes} boxes"
        if split.ignored:
            boxes += (f" ({split.boxes - split.ignored} evaluated; {split.ignored} crowd/difficult, ignored by eval"
                      " and training)")
        lines.append(f"split {split.split}: {split.images} images, {boxes}, "
                     f"{len(split.unlabelled)} images without labels")
        width = max([len(name) for name in report.names] + [5])
        extra = f"  {'evaluated':>9}  {'crowd/difficult':>15}" if split.ignored else ""
        lines.append(f"  {'class':<{width}}  {'images':>7}  {'boxes':>7}{extra}")
        ignored = split.ignored_per_class or [0] * len(split.boxes_per_class)
        for name, images, count, flagged in zip(report.names, split.images_per_class, split.boxes_per_class, ignored):
            extra = f"  {count - flagged:>9}  {flagged:>15}" if split.ignored else ""
            lines.append(f"  {name:<{width}}  {images:>7}  {count:>7}{extra}")
        if split.unlabelled:
            shown = ", ".join(split.unlabelled[:10]) + (" ..." if len(split.unlabelled) > 10 else "")
            lines.append(f"  images without labels: {shown}")
        by_kind: dict[str, int] = {}
        for issue in split.issues:
            by_kind[issue.kind] = by_kind.get(issue.kind, 0) + 1
        if by_kind:
            lines.append("  problems: " + ", ".join(f"{kind} {count}" for kind, count in sorted(by_kind.items())))
        for issue in split.issues:
            lines.append(f"  {issue.severity}: {issue}")
    lines.append("")
    lines.append(f"{report.errors} errors, {report.warnings} warnings")
    return "\n".join(lines)
