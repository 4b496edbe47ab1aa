"""The end-to-end head's selection cues (3D max filter) and the detector's NMS-survivor targets."""

import math

import pytest
import torch

from yoloxkit.assign.detector_targets import detector_nms_targets
from yoloxkit.losses import YoloxLoss, best_detector_scores, distill_pss_loss
from yoloxkit.models.selection_cues import NUM_CUES, max_filter_3d, selection_cues


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _levels(num_classes=2, sizes=(8, 4, 2), low=0.01):
    """Per-level objectness logits (σ ≈ 1) and class logits at probability ``low``."""
    obj = [torch.full((1, 1, s, s), 8.0) for s in sizes]
    cls = [torch.full((1, num_classes, s, s), _logit(low)) for s in sizes]
    return obj, cls


def test_max_filter_3d_takes_the_window_and_both_neighbouring_levels():
    maps = [torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    maps[0][0, 0, 11, 11] = 3.0  # fine: its window (10..12) pools onto middle cells 5..6
    maps[2][0, 0, 0, 0] = 2.0  # coarsest: its window (0..1) upsamples onto middle cells 0..3
    out = max_filter_3d(maps)
    assert out[0][0, 0, 10, 12] == 3.0 and out[0][0, 0, 13, 13] == 0.0
    assert out[1][0, 0, 5, 5] == 3.0 and out[1][0, 0, 6, 6] == 3.0 and out[1][0, 0, 4, 4] == 0.0
    assert out[1][0, 0, 3, 3] == 2.0 and out[1][0, 0, 4, 0] == 0.0
    # only neighbouring levels: the fine peak does not reach the coarsest level
    assert out[2][0, 0, 1, 1] == 2.0 and out[2][0, 0, 3, 3] == 0.0
    assert [o.shape for o in out] == [m.shape for m in maps]


def test_cues_mark_the_local_maximum_of_its_class_only():
    obj, cls = _levels()
    cls[0][0, 0, 3, 3] = _logit(0.9)  # the object, class 0
    cls[0][0, 0, 3, 4] = _logit(0.8)  # its duplicate, one cell right
    cls[0][0, 1, 3, 2] = _logit(0.5)  # another class beside it: not suppressed by class 0
    cues = selection_cues(obj, cls)
    assert [c.shape[1] for c in cues] == [NUM_CUES] * 3
    is_max, is_max_any_class, ratio, log_score = cues[0][0]
    assert is_max[3, 3] == 1 and is_max[3, 4] == 0 and is_max[3, 2] == 1
    assert is_max_any_class[3, 3] == 1 and is_max_any_class[3, 2] == 0  # class 0 outscores it there
    assert ratio[3, 4] == pytest.approx(0.8 / 0.9, rel=1e-3) and ratio[3, 3] == pytest.approx(1.0)
    assert log_score[3, 3] == pytest.approx(math.log(0.9 * torch.sigmoid(torch.tensor(8.0)).item()) / 5, rel=1e-4)
    # the coarser level's cell over the object sees the finer maximum and is no maximum itself
    cls[1][0, 0, 1, 1] = _logit(0.7)
    assert selection_cues(obj, cls)[1][0, 0, 1, 1] == 0


def test_cues_pass_no_gradient():
    obj, cls = _levels()
    for tensor in obj + cls:
        tensor.requires_grad_(True)
    assert not any(c.requires_grad for c in selection_cues(obj, cls))


def _survivors(boxes, obj, cls):
    return detector_nms_targets(boxes, *best_detector_scores(obj, cls))


def _anchors(boxes, scores, classes, num_classes=3):
    """Flat predictions of one image: decoded (cx, cy, w, h) boxes and logits with the given best scores."""
    boxes = torch.tensor(boxes, dtype=torch.float32)[None]
    obj = torch.full((1, len(scores)), 12.0)
    cls = torch.full((1, len(scores), num_classes), -12.0)
    for i, (score, label) in enumerate(zip(scores, classes)):
        cls[0, i, label] = _logit(score)
    return boxes, obj, cls


def test_nms_targets_keep_the_best_of_overlapping_boxes_per_class():
    boxes, obj, cls = _anchors(
        [[50, 50, 40, 40], [52, 50, 40, 40], [51, 50, 40, 40], [150, 50, 40, 40], [50, 50, 40, 40]],
        [0.9, 0.8, 0.6, 0.3, 0.02], [0, 0, 1, 0, 2])
    keep = _survivors(boxes, obj, cls)
    # 0 keeps; 1 is its duplicate; 2 is another class; 3 is elsewhere; 4 is under the score floor
    assert keep.tolist() == [[True, False, True, True, False]]


def test_nms_targets_treat_each_image_apart():
    boxes, obj, cls = _anchors([[50, 50, 40, 40], [52, 50, 40, 40]], [0.9, 0.8], [0, 0])
    both = _survivors(boxes.repeat(2, 1, 1), obj.repeat(2, 1), cls.repeat(2, 1, 1))
    assert both.tolist() == [[True, False], [True, False]]
    flipped = _survivors(torch.stack([boxes[0], boxes[0].flip(0)]), torch.cat([obj, obj]),
                         torch.stack([cls[0], cls[0].flip(0)]))
    assert flipped.tolist() == [[True, False], [False, True]]
    assert not _survivors(boxes, obj - 40, cls).any()  # nothing scores


def test_distill_loss_falls_as_the_branch_keeps_the_survivors():
    boxes, obj, cls = _anchors([[50, 50, 40, 40], [52, 50, 40, 40]], [0.9, 0.8], [0, 0])
    keep = _survivors(boxes, obj, cls)
    scores = best_detector_scores(obj, cls)[0]
    right = distill_pss_loss(torch.tensor([[8.0, -8.0]]), scores, keep)
    wrong = distill_pss_loss(torch.tensor([[-8.0, 8.0]]), scores, keep)
    assert float(right) < 0.01 < 1.0 < float(wrong)


def test_unknown_pss_targets_are_refused():
    with pytest.raises(ValueError, match="pss_targets"):
        YoloxLoss(pss_targets="hungarian")
