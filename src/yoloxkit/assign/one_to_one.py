"""One-to-one label assignment for the end-to-end (NMS-free) YOLOX: one positive anchor per gt.

The YOLOX paper's NMS-free row follows PSS (Zhou et al., 2021), which follows POTO (DeFCN, Wang et
al., 2021) for the one-to-one assignment. Choices, where the paper leaves a detail open:

* **quality** of gt ``g`` at anchor ``a`` (POTO): ``(σ(cls_g)·σ(obj))^(1-α) · IoU(box_a, g)^α``,
  the detector's joint score for the gt's class times its localisation, with ``α = 0.2``
  (:data:`QUALITY_ALPHA`; POTO's 0.8 did worse with a frozen detector);
* **spatial prior**: only anchors within SimOTA's centre prior of ``g`` (1.5 strides of its centre,
  :func:`~yoloxkit.assign.geometry.center_prior`) are eligible, where the one-to-many (SimOTA)
  positives of the detector come from; quality is 0 elsewhere;
* **matching**: the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) per image,
  maximising the summed quality: each gt gets exactly one anchor, no anchor serves two gts. A gt
  whose only eligible anchors all went to other gts (not seen in practice: every level offers about
  nine) stays unmatched rather than take an anchor outside its prior.

The pairwise quality is computed for the whole batch at once on each image's candidates (packed as
in :mod:`~yoloxkit.assign.simota`); only the small ``[G, K]`` matchings run per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .geometry import CandidateSlots, gather_candidates, pairwise_iou_cxcywh
from .inputs import AssignInputs, GroundTruth, from_loose_arguments

__all__ = ["OneToOneAssignment", "one_to_one_quality", "match_one_to_one", "one_to_one_assign", "QUALITY_ALPHA"]

#: POTO's alpha is 0.8 (IoU-heavy). With the detector frozen, score-heavy qualities did better on
#: coco-mini (nano-e2e, 60 epochs, NMS-free AP): 23.6 at 0.8, 25.5 at 0.2, 24.7 at 0.
QUALITY_ALPHA = 0.2


@dataclass
class OneToOneAssignment:
    """Result of :func:`one_to_one_assign` for ``B`` images, ``A`` anchors and ``G`` gt slots."""

    fg_mask: torch.Tensor  # [B, A] bool: the one positive anchor of each matched gt
    matched_gt: torch.Tensor  # [B, A] int64: its gt index (0 elsewhere)
    gt_anchor: torch.Tensor  # [B, G] int64: each gt's anchor, -1 for padding or an unmatched gt
    num_gt: torch.Tensor  # scalar int64: valid gts in the batch


def one_to_one_quality(
    scores: torch.Tensor, ious: torch.Tensor, eligible: torch.Tensor, alpha: float = QUALITY_ALPHA
) -> torch.Tensor:
    """POTO quality ``scores^(1-alpha) * ious^alpha``, 0 where not ``eligible`` (all ``[..., G, K]``)."""
    quality = scores.clamp(min=0).pow(1 - alpha) * ious.clamp(min=0).pow(alpha)
    return quality.masked_fill(~eligible, 0.0)


def match_one_to_one(quality: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Hungarian matching of one image: the anchor column of each gt row (-1 if none eligible is left).

    ``quality`` and ``eligible`` ``[G, K]``; the matching maximises the summed quality, and a gt is
    never given an ineligible anchor.
    """
    from scipy.optimize import linear_sum_assignment  # ~0.2 s to import: only when training e2e models

    num_gt = quality.shape[0]
    result = np.full(num_gt, -1, dtype=np.int64)
    if num_gt == 0 or quality.shape[1] == 0:
        return result
    # Ineligible pairs cost more than any eligible set of pairs can gain (quality <= 1 each).
    cost = np.where(eligible, -quality.astype(np.float64), float(num_gt + 1))
    rows, cols = linear_sum_assignment(cost)
    ok = eligible[rows, cols]
    result[rows[ok]] = cols[ok]
    return result


@torch.no_grad()
def one_to_one_assign(
    inputs: AssignInputs,
    *loose: object,
    center_radius: float = 1.5,
    alpha: float = QUALITY_ALPHA,
) -> OneToOneAssignment:
    """Pick exactly one positive anchor per valid gt, none shared, maximising the POTO quality.

    ``inputs`` is what :func:`~yoloxkit.assign.simota.simota_assign` reads
    (:class:`~yoloxkit.assign.inputs.AssignInputs`: decoded predictions, anchor grid, padded gts);
    the eight loose tensors of earlier versions are still accepted, with a
    :class:`DeprecationWarning`.
    """
    inputs = from_loose_arguments("one_to_one_assign", inputs, loose)
    targets = inputs.targets
    batch, num_anchors = inputs.predictions.boxes.shape[:2]
    num_gt = targets.boxes.shape[1]
    device = inputs.predictions.boxes.device
    fg = torch.zeros(batch, num_anchors, dtype=torch.bool, device=device)
    matched = torch.zeros(batch, num_anchors, dtype=torch.long, device=device)
    gt_anchor = torch.full((batch, num_gt), -1, dtype=torch.long, device=device)
    total = targets.valid.sum()
    if num_gt == 0 or not bool(targets.valid.any()):
        return OneToOneAssignment(fg, matched, gt_anchor, total)
    slots = gather_candidates(inputs, center_radius)
    columns_t = torch.from_numpy(_match_images(slots, targets, alpha)).to(device)
    has = columns_t >= 0
    anchors = slots.index.gather(1, columns_t.clamp(min=0))  # [B, G]
    gt_anchor = torch.where(has, anchors, gt_anchor)
    image_index, gt_index = has.nonzero(as_tuple=True)
    fg[image_index, anchors[image_index, gt_index]] = True
    matched[image_index, anchors[image_index, gt_index]] = gt_index
    return OneToOneAssignment(fg, matched, gt_anchor, total)


def _match_images(slots: CandidateSlots, targets: GroundTruth, alpha: float) -> np.ndarray:
    """The POTO quality of every (gt, candidate) pair for the batch, then one Hungarian matching
    per image: each gt's slot column ``[B, G]`` (-1 for padding or an unmatched gt)."""
    gt_boxes, gt_classes, gt_valid = targets.boxes.float(), targets.classes.long().clamp(min=0), targets.valid
    batch, num_gt, width = gt_boxes.shape[0], gt_boxes.shape[1], slots.index.shape[1]
    eligible = slots.in_prior & slots.slot_valid.unsqueeze(1)  # [B, G, K]
    obj = slots.obj_logits.float().sigmoid()  # [B, K]
    cls = slots.cls_logits.float().sigmoid()
    gt_scores = cls.transpose(1, 2).gather(1, gt_classes.unsqueeze(-1).expand(-1, -1, width))  # [B, G, K]
    quality = one_to_one_quality(gt_scores * obj.unsqueeze(1), pairwise_iou_cxcywh(gt_boxes, slots.boxes), eligible, alpha)

    quality_np, eligible_np = quality.cpu().numpy(), eligible.cpu().numpy()
    columns = np.full((batch, num_gt), -1, dtype=np.int64)
    for image in range(batch):
        rows = np.flatnonzero(gt_valid[image].cpu().numpy())
        if rows.size:
            columns[image, rows] = match_one_to_one(quality_np[image, rows], eligible_np[image, rows])
    return columns
