"""One-to-one assignment of the end-to-end models: one positive per gt, none shared, optimal."""

import itertools

import numpy as np
import pytest
import torch

from yoloxkit.assign.inputs import AssignInputs
from yoloxkit.assign.one_to_one import match_one_to_one, one_to_one_assign, one_to_one_quality

SHAPES = [(8, 8), (4, 4), (2, 2)]
STRIDES = (8, 16, 32)
NUM_ANCHORS = 64 + 16 + 4


def _brute_force(quality: np.ndarray, eligible: np.ndarray) -> float:
    """Best summed quality over every injective gt -> anchor map using eligible pairs only
    (a gt may stay unmatched only when no eligible anchor is left for it)."""
    num_gt, num_anchors = quality.shape
    best = (-1, -1.0)
    for cols in itertools.permutations(range(num_anchors), num_gt):
        ok = [eligible[g, c] for g, c in enumerate(cols)]
        total = sum(quality[g, c] for g, c in enumerate(cols) if ok[g])
        best = max(best, (sum(ok), total))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_matching_is_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    num_gt, num_anchors = rng.integers(1, 4), rng.integers(3, 6)
    quality = rng.random((num_gt, num_anchors))
    eligible = rng.random((num_gt, num_anchors)) < 0.7
    cols = match_one_to_one(quality, eligible)
    matched = cols >= 0
    assert len(set(cols[matched].tolist())) == matched.sum()  # no anchor shared
    assert all(eligible[g, c] for g, c in enumerate(cols) if c >= 0)
    count, total = _brute_force(quality, eligible)
    assert matched.sum() == count
    assert quality[np.flatnonzero(matched), cols[matched]].sum() == pytest.approx(total)


def test_greedy_choice_is_not_what_is_taken_when_it_is_worse_overall():
    # gt 0 prefers anchor 0 slightly; gt 1 can only use anchor 0: the optimum gives 0 -> 1.
    quality = np.array([[0.9, 0.8], [0.7, 0.0]])
    eligible = np.array([[True, True], [True, False]])
    assert match_one_to_one(quality, eligible).tolist() == [1, 0]


def test_quality_is_zero_outside_the_prior_and_alpha_weighs_iou_against_score():
    scores = torch.tensor([[0.9, 0.3, 0.9]])
    ious = torch.tensor([[0.3, 0.9, 0.9]])
    eligible = torch.tensor([[True, True, False]])
    q = one_to_one_quality(scores, ious, eligible)
    assert q[0, 2] == 0
    assert q[0, 0] > q[0, 1]  # the default alpha 0.2: the detector's score counts more
    q = one_to_one_quality(scores, ious, eligible, alpha=0.8)
    assert q[0, 1] > q[0, 0]  # POTO's 0.8: localisation counts more


def _batch():
    gt = torch.zeros(2, 3, 4)
    gt[0, 0] = torch.tensor([20.0, 20.0, 16.0, 16.0])
    gt[0, 1] = torch.tensor([22.0, 22.0, 18.0, 18.0])  # overlaps gt 0: they compete for anchors
    gt[0, 2] = torch.tensor([40.0, 44.0, 30.0, 20.0])
    gt[1, 0] = torch.tensor([30.0, 30.0, 50.0, 40.0])
    valid = torch.tensor([[True, True, True], [True, False, False]])
    classes = torch.tensor([[0, 1, 0], [1, 0, 0]])
    return gt, classes, valid


def test_batched_assignment_gives_each_gt_its_own_anchor():
    torch.manual_seed(0)
    gt, classes, valid = _batch()
    boxes = gt[:, :1].expand(2, NUM_ANCHORS, 4) + torch.randn(2, NUM_ANCHORS, 4)
    result = one_to_one_assign(AssignInputs.from_tensors(
        boxes, torch.randn(2, NUM_ANCHORS), torch.randn(2, NUM_ANCHORS, 2), gt, classes, valid, SHAPES, STRIDES
    ))
    assert result.fg_mask.sum(dim=1).tolist() == [3, 1]
    assert result.gt_anchor[1, 1:].tolist() == [-1, -1]  # padding gets nothing
    for image in range(2):
        anchors = result.gt_anchor[image][valid[image]]
        assert len(set(anchors.tolist())) == len(anchors)
        for g, a in enumerate(anchors.tolist()):
            assert result.fg_mask[image, a] and result.matched_gt[image, a] == g
    assert int(result.num_gt) == 4


def test_batched_assignment_picks_the_best_quality_anchor():
    gt, classes, valid = _batch()
    gt, classes, valid = gt[1:], classes[1:], valid[1:]
    boxes = torch.zeros(1, NUM_ANCHORS, 4)
    boxes[..., 2:] = 1.0
    target = 64 + 1 * 4 + 1  # stride-16 anchor at (24, 24), inside the prior of the gt at (30, 30)
    boxes[0, target] = gt[0, 0]
    weaker = 3 * 8 + 3  # stride-8 anchor at (28, 28), also in the prior, with a box of IoU 0.25
    boxes[0, weaker] = gt[0, 0] * torch.tensor([1.0, 1.0, 0.5, 0.5])
    result = one_to_one_assign(AssignInputs.from_tensors(
        boxes, torch.zeros(1, NUM_ANCHORS), torch.zeros(1, NUM_ANCHORS, 2), gt, classes, valid, SHAPES, STRIDES
    ))
    assert result.gt_anchor[0, 0] == target


def test_no_gts_gives_no_positives():
    result = one_to_one_assign(AssignInputs.from_tensors(
        torch.rand(1, NUM_ANCHORS, 4), torch.zeros(1, NUM_ANCHORS), torch.zeros(1, NUM_ANCHORS, 2),
        torch.zeros(1, 0, 4), torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0, dtype=torch.bool),
        SHAPES, STRIDES,
    ))
    assert not result.fg_mask.any() and int(result.num_gt) == 0
