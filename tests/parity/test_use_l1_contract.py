"""The official switch of the L1 term, ``model.head.use_l1 = True``, gives the reference's loss.

The official trainer turns the L1 term on by setting ``model.head.use_l1 = True``; a training
script ported from it must get the same loss here. For every model of the zoo (without the PSS
branch), ours and the reference get the same random weights (:mod:`.reference`), the switch is set
on both heads the official way, and one train-mode forward on the same small batch must give
every loss term within 1e-4 (relative), with the L1 term on. The two big models run once, at a
small input, to keep the test cheap.
"""

from __future__ import annotations

import math

import pytest
import torch

import yoloxkit

from .reference import build_reference, randomize

HEIGHT, WIDTH = 128, 160
TERMS = ("total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss")
NAMES = [name for name, spec in yoloxkit.models.MODEL_SPECS.items() if not spec.end_to_end and not spec.roadmap]


def _targets() -> torch.Tensor:
    gen = torch.Generator().manual_seed(21)
    targets = torch.zeros(2, 10, 5)
    for b, n in enumerate((4, 6)):
        targets[b, :n, 0] = torch.randint(0, 80, (n,), generator=gen).float()
        targets[b, :n, 1:3] = torch.rand(n, 2, generator=gen) * torch.tensor([WIDTH - 40, HEIGHT - 40]) + 20
        targets[b, :n, 3:5] = torch.rand(n, 2, generator=gen) * 40 + 8
    return targets


def test_all_seven_models_are_covered():
    assert len(NAMES) == 7


@pytest.mark.parametrize("name", NAMES)
def test_head_use_l1_switches_the_l1_term_as_the_reference_does(name):
    ref = build_reference(name)
    randomize(ref, seed=sum(map(ord, name)))
    with torch.no_grad():
        for conv in ref.head.reg_preds:  # boxes of ~3 strides: several positives per gt
            conv.bias[2:4] += math.log(3.0)
    ours = yoloxkit.build_model(name)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.train()
    ref.train()
    ours.head.use_l1 = True  # the official switch, on both models
    ref.head.use_l1 = True
    assert ours.criterion.use_l1 is True  # one flag: the criterion reads it back

    images = torch.rand(2, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(5)) * 255
    targets = _targets()
    with torch.no_grad():
        actual = ours(images, targets)
        expected = ref(images, targets)
    assert float(actual["l1_loss"]) > 0 and float(expected["l1_loss"]) > 0
    for term in TERMS:
        mine, theirs = float(actual[term]), float(expected[term])
        assert math.isfinite(theirs)
        assert abs(mine - theirs) <= 1e-4 * abs(theirs), (term, mine, theirs)
