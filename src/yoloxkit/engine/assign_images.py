"""Pictures of the label assignment of a training batch (``--visualize-assign``).

The model runs on the batch, its criterion's assigner (SimOTA; a roadmap row's own,
:func:`yoloxkit.losses.run_assigner`) assigns its anchors and
:func:`yoloxkit.assign.visualize.draw_assignments` draws the positives of each gt box.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..assign.visualize import draw_assignments
from ..io import atomic_path
from ..assign.yolov3 import IGNORE_IOU
from ..losses import flatten_predictions, run_assigner

__all__ = ["visualize_batch", "write_assignment_images"]


@torch.no_grad()
def visualize_batch(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> list[np.ndarray]:
    """Run ``model`` on a training batch, assign with its criterion's assigner (SimOTA without one)
    and draw the positives.

    The model runs in eval mode (BatchNorm running statistics are left untouched) and is
    put back in its previous mode afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        levels = model.head.forward_levels(model.backbone(images))
    finally:
        model.train(was_training)
    preds = flatten_predictions(levels, model.head.strides, getattr(model.head, "anchor_sizes", None))
    criterion = getattr(model, "criterion", None)
    assigner = getattr(criterion, "assigner", "simota")
    assignment = run_assigner(assigner, preds.assign_inputs(targets), getattr(criterion, "ignore_iou", IGNORE_IOU))
    return draw_assignments(images, targets, assignment.fg_mask, assignment.matched_gt, preds.centers)


def write_assignment_images(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, out_dir: str | os.PathLike, prefix: str = "assign"
) -> list[Path]:
    """Write :func:`visualize_batch` drawings as ``OUT_DIR/PREFIX_<i>.png`` (atomically)."""
    paths = []
    for i, canvas in enumerate(visualize_batch(model, images, targets)):
        path = Path(out_dir) / f"{prefix}_{i}.png"
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), canvas):
                raise OSError(f"{path}: could not write the image")
        paths.append(path)
    return paths
