"""Drawing SimOTA positives on images (the pictures of the trainer's ``--visualize-assign``,
:mod:`yoloxkit.engine.assign_images`).

Each gt box is drawn in its own colour, and the centre of every anchor assigned to it is
drawn as a dot of the same colour, so one can see which anchors learn which object.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

__all__ = ["draw_assignments"]


def _palette(index: int) -> tuple[int, int, int]:
    """A distinct, bright BGR colour for gt ``index`` (golden-ratio hue steps)."""
    hue = int((index * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _to_bgr_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(image, torch.Tensor):  # model input layout [3, H, W], BGR 0-255
        image = image.detach().float().cpu().permute(1, 2, 0).numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"images: expected HxWx3 arrays or 3xHxW tensors, got shape {image.shape}")
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))


def draw_assignments(
    images: torch.Tensor | Sequence[np.ndarray],
    targets: torch.Tensor,
    fg_mask: torch.Tensor,
    matched_gt: torch.Tensor,
    centers: torch.Tensor,
    dot_radius: int = 2,
) -> list[np.ndarray]:
    """Annotated BGR copies of ``images`` showing the gt boxes and their positive anchors.

    Args:
        images: ``[B, 3, H, W]`` model input (BGR, 0-255) or a list of HxWx3 BGR arrays.
        targets: ``[B, G, 5]`` rows (class, cx, cy, w, h) in input pixels, zero rows padding.
        fg_mask: ``[B, A]`` positives; ``matched_gt``: ``[B, A]`` their gt index.
        centers: ``[A, 2]`` anchor centres in input pixels.
    """
    fg_mask, matched_gt = fg_mask.cpu(), matched_gt.cpu()
    centers = centers.cpu()
    targets = targets.detach().float().cpu()
    drawn = []
    for b in range(len(images)):
        canvas = _to_bgr_uint8(images[b])
        rows = targets[b]
        count = int((rows.sum(dim=1) > 0).sum())
        for g in range(count):
            cx, cy, w, h = rows[g, 1:5].tolist()
            top_left = (int(round(cx - w / 2)), int(round(cy - h / 2)))
            bottom_right = (int(round(cx + w / 2)), int(round(cy + h / 2)))
            cv2.rectangle(canvas, top_left, bottom_right, _palette(g), 2)
        positives = fg_mask[b].nonzero(as_tuple=True)[0]
        for anchor in positives.tolist():
            x, y = centers[anchor].tolist()
            color = _palette(int(matched_gt[b, anchor]))
            cv2.circle(canvas, (int(round(x)), int(round(y))), dot_radius, color, -1)
        drawn.append(canvas)
    return drawn
