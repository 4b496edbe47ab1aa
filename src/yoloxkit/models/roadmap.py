"""The paper's roadmap (YOLOX, arXiv 2107.08430, Table 2): YOLOv3-SPP built up into
YOLOX-Darknet53 one step at a time, and the zoo model of each row.

The figures are the paper's (COCO val AP; params and GFLOPs at 640; V100 FP16 batch-1 latency,
no post-processing). ``PAPER_TABLE2`` maps the zoo model of each row to the row, in the table's
order; ``ROADMAP_ROWS`` names those models.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

__all__ = ["PaperRow", "PAPER_TABLE2", "ROADMAP_ROWS"]


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 2 and the zoo model that builds it."""

    row: str  # the row's label in the paper
    model: str  # the zoo name
    ap: float  # COCO val AP, percent
    params_m: float  # parameters, millions
    gflops: float  # at 640x640
    latency_ms: float  # V100, FP16, batch 1


#: zoo model -> its row of Table 2, in the table's order (read-only)
PAPER_TABLE2: Mapping[str, PaperRow] = MappingProxyType({
    row.model: row
    for row in (
        PaperRow("YOLOv3 baseline", "yolox-roadmap-baseline", 38.5, 63.00, 157.3, 10.5),
        PaperRow("+decoupled head", "yolox-roadmap-decoupled", 39.6, 63.86, 186.0, 11.6),
        PaperRow("+strong augmentation", "yolox-roadmap-strongaug", 42.0, 63.86, 186.0, 11.6),
        PaperRow("+anchor-free", "yolox-roadmap-anchorfree", 42.9, 63.72, 185.3, 11.1),
        PaperRow("+multi positives", "yolox-roadmap-multipos", 45.0, 63.72, 185.3, 11.1),
        PaperRow("+SimOTA", "yolox-darknet53", 47.3, 63.72, 185.3, 11.1),
        PaperRow("+NMS free", "yolox-darknet53-e2e", 46.5, 67.27, 205.1, 13.5),
    )
})

#: the zoo model of every row of Table 2, in the table's order
ROADMAP_ROWS: tuple[str, ...] = tuple(PAPER_TABLE2)
