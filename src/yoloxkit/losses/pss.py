"""The PSS branch's loss of end-to-end (NMS-free) models.

A binary cross-entropy on the final score ``d·σ(pss)``, where ``d = σ(obj)·σ(cls)`` is the
detector's score taken detached (the stop-gradient), target 1 at the positives and 0 at every other
anchor, leaving out the constant ``-log d`` of the positives. Anchors the detector already scores
near 0 cost nearly nothing, so the loss needs no sampling or focal weighting: it teaches the branch
to keep one anchor per object and silence the duplicates around it. The positives are the
detector's own NMS survivors (:func:`distill_pss_loss`, :mod:`yoloxkit.assign.detector_targets`;
divided by their number) or, with ``pss_targets="gt"``, each gt's one-to-one anchor
(:func:`pss_loss`, :mod:`yoloxkit.assign.one_to_one`; divided by the number of gts).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..assign.one_to_one import OneToOneAssignment

__all__ = ["PSS_TARGETS", "flatten_pss", "pss_loss", "best_detector_scores", "distill_pss_loss"]

#: what the PSS branch learns to keep: ``"detector"`` the detector's own NMS survivors (default),
#: ``"gt"`` the one-to-one (Hungarian) assignment of the ground truth
PSS_TARGETS = ("detector", "gt")


def flatten_pss(pss_levels: list[torch.Tensor]) -> torch.Tensor:
    """Per-level PSS logits ``[B, 1, H, W]`` flattened to ``[B, A]`` in anchor order."""
    return torch.cat([p.flatten(2) for p in pss_levels], dim=2)[:, 0].float()


def _final_score_bce(pss_logits: torch.Tensor, score: torch.Tensor, fg: torch.Tensor, positive_weight: float) -> torch.Tensor:
    """Summed BCE of ``score·σ(pss)`` against ``fg`` (module docstring), ``score`` detached."""
    log_pss = F.logsigmoid(pss_logits)
    # At a positive, -log(d·σ(pss)) = -log d - log σ(pss): the constant -log d is left out, so the
    # loss is 0 at its optimum (gradients unchanged).
    log_not_p = torch.log1p(-(score * log_pss.exp()).clamp(max=1 - 1e-6))
    return -torch.where(fg, positive_weight * log_pss, log_not_p).sum()


def _detector_scores(obj_logits: torch.Tensor, cls_logits: torch.Tensor) -> torch.Tensor:
    return obj_logits.detach().float().sigmoid().unsqueeze(-1) * cls_logits.detach().float().sigmoid()


def pss_loss(
    pss_logits: torch.Tensor,
    obj_logits: torch.Tensor,
    cls_logits: torch.Tensor,
    assignment: OneToOneAssignment,
    gt_classes: torch.Tensor,
    positive_weight: float = 1.0,
) -> torch.Tensor:
    """The PSS loss of a batch on ground-truth one-to-one targets (module docstring): BCE of
    ``σ(obj)·σ(cls)·σ(pss)`` (detector part detached), summed over anchors, divided by
    ``max(1, gts)``.

    ``pss_logits``/``obj_logits`` ``[B, A]``, ``cls_logits`` ``[B, A, C]``, ``gt_classes`` ``[B, G]``;
    ``positive_weight`` multiplies the positives' terms.
    """
    detector = _detector_scores(obj_logits, cls_logits)
    best = detector.max(dim=-1).values  # [B, A]
    fg = assignment.fg_mask
    if gt_classes.shape[1]:
        own_class = gt_classes.long().clamp(min=0).gather(1, assignment.matched_gt)  # [B, A]
        own = detector.gather(2, own_class.unsqueeze(-1)).squeeze(-1)
        score = torch.where(fg, own, best)
    else:
        score = best
    loss = _final_score_bce(pss_logits, score, fg, positive_weight)
    return loss / assignment.num_gt.clamp(min=1).float()


def best_detector_scores(obj_logits: torch.Tensor, cls_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each anchor's best class and its detector score ``σ(obj)·σ(cls)``, detached: ``[B, A]`` each
    (scores first), from ``obj_logits`` ``[B, A]`` and ``cls_logits`` ``[B, A, C]``."""
    return _detector_scores(obj_logits, cls_logits).max(dim=-1)


def distill_pss_loss(pss_logits: torch.Tensor, scores: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """The PSS loss on the detector's own NMS survivors ``fg`` ``[B, A]``
    (:func:`~yoloxkit.assign.detector_targets.detector_nms_targets`): the same BCE on each anchor's
    best-class detector score ``scores`` (:func:`best_detector_scores`), divided by
    ``max(1, positives)``."""
    return _final_score_bce(pss_logits, scores, fg, 1.0) / max(1, int(fg.sum()))
