"""Eval-mode outputs of every zoo model equal the reference implementation's."""

import pytest
import torch

import yoloxkit
from yoloxkit.models import MODEL_SPECS

from .reference import build_reference, randomize


@pytest.mark.parametrize("name", [name for name, spec in MODEL_SPECS.items() if not spec.end_to_end and not spec.roadmap])
def test_state_dict_keys_and_eval_outputs_match_reference(name):
    ours = yoloxkit.build_model(name).eval()
    ref = build_reference(name).eval()
    assert list(ours.state_dict().keys()) == list(ref.state_dict().keys())
    state = randomize(ref, seed=hash(name) % 1000)
    ours.load_state_dict(state, strict=True)

    gen = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 256, 320, generator=gen) * 255
    with torch.no_grad():
        expected = ref(images)
        actual = ours(images)
    assert actual.shape == expected.shape == (2, 32 * 40 + 16 * 20 + 8 * 10, 85)
    assert torch.isfinite(expected).all()
    # Boxes are compared relative to their pixel scale, scores (in [0, 1]) absolutely.
    box_scale = expected[..., :4].abs().max().item()
    assert (actual[..., :4] - expected[..., :4]).abs().max().item() <= 1e-4 * box_scale
    assert (actual[..., 4:] - expected[..., 4:]).abs().max().item() <= 1e-4
    assert expected[..., 4:].std() > 1e-3  # the scores are not all saturated


@pytest.mark.parametrize("name", ["yolox-nano", "yolox-darknet53"])
def test_undecoded_outputs_match_reference(name):
    ours = yoloxkit.build_model(name, num_classes=3).eval()
    ref = build_reference(name, num_classes=3).eval()
    ours.load_state_dict(randomize(ref, seed=7))
    ours.head.decode_in_inference = False
    ref.head.decode_in_inference = False
    images = torch.rand(1, 3, 160, 224) * 255
    with torch.no_grad():
        expected, actual = ref(images), ours(images)
    assert actual.shape[-1] == 8
    assert torch.allclose(actual, expected, atol=1e-4 * max(expected.abs().max().item(), 1.0))
