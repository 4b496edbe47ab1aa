"""Small hand-written assignment cases shared by the assigner tests."""

from __future__ import annotations

import torch

from yoloxkit.assign.inputs import GroundTruth


def truth(rows: list[list[list[float]]]) -> GroundTruth:
    """Padded gts (class 0) from per-image lists of (cx, cy, w, h)."""
    width = max(1, max(len(r) for r in rows))
    boxes = torch.zeros(len(rows), width, 4)
    valid = torch.zeros(len(rows), width, dtype=torch.bool)
    for b, r in enumerate(rows):
        if r:
            boxes[b, :len(r)] = torch.tensor(r)
            valid[b, :len(r)] = True
    return GroundTruth(boxes, torch.zeros(len(rows), width, dtype=torch.long), valid)
