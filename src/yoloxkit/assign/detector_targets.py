"""PSS targets from the detector itself: the anchors its own NMS keeps (self-distillation).

The end-to-end branch learns to do what NMS does, so its positives are the anchors that survive
class-aware NMS on the detector's scores (``σ(obj)·σ(cls)`` of each anchor's best class, at least
:data:`DISTILL_CONF`, IoU :data:`DISTILL_IOU`). Every object the detector sees then has exactly one
positive anchor, its best-scored box; every anchor NMS would suppress is a negative. These targets
need no ground truth, and they agree with the selection cues: a survivor is, nearly always, the
maximum of its 3D neighbourhood.

Measured against the ground-truth one-to-one assignment (:mod:`.one_to_one`) on coco-mini
(docs/end_to_end.md): that assignment also silences every detection that matches no annotation,
which lowers the scores of the objects kept and costs about 1.5 AP with NMS and without it.
"""

from __future__ import annotations

import torch

from .geometry import cxcywh_to_xyxy

__all__ = ["DISTILL_CONF", "DISTILL_IOU", "detector_nms_targets"]

#: lowest detector score an anchor needs to be a positive
DISTILL_CONF = 0.05
#: NMS IoU of the targets: 0.5 rather than evaluation's 0.65, so that two kept boxes never both
#: match one object at IoU 0.5 (what the duplicate measure counts)
DISTILL_IOU = 0.5


@torch.no_grad()
def detector_nms_targets(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    conf: float = DISTILL_CONF,
    iou: float = DISTILL_IOU,
) -> torch.Tensor:
    """``[B, A]`` bool: the anchors that class-aware NMS keeps, per image.

    ``boxes`` ``[B, A, 4]`` decoded (cx, cy, w, h); ``scores`` and ``classes`` ``[B, A]``, each
    anchor's best class and its detector score ``σ(obj)·σ(cls)``. The whole batch goes through one
    ``batched_nms`` (one group per image and class).
    """
    from torchvision.ops import batched_nms  # torchvision loads only when a model trains

    image, anchor = (scores >= conf).nonzero(as_tuple=True)
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    if image.numel() == 0:
        return keep_mask
    groups = image * (int(classes.max()) + 1) + classes[image, anchor]
    kept = batched_nms(cxcywh_to_xyxy(boxes[image, anchor].float()), scores[image, anchor].float(), groups, iou)
    keep_mask[image[kept], anchor[kept]] = True
    return keep_mask
