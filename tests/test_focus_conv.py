"""The Focus stem rewritten as one convolution (export/focus_conv.py), for pnnx/ncnn."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.parity.reference import randomize
from yoloxkit import build_model
from yoloxkit.export.focus_conv import focus_as_conv, focus_weight_as_conv
from yoloxkit.models.blocks import ConvBnAct, SpaceToDepthStem


def _stems(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for name, m in model.named_modules() if name.endswith("backbone.stem") and isinstance(m, kind)]


@pytest.mark.parametrize("name", ["yolox-nano", "yolox-s"])
def test_the_rewritten_model_gives_the_same_outputs(name):
    model = build_model(name)
    randomize(model, seed=7)
    model.eval()
    rewritten = focus_as_conv(model).eval()
    assert len(_stems(model, SpaceToDepthStem)) == 1, "the original keeps its Focus stem"
    (stem,) = _stems(rewritten, ConvBnAct)
    assert stem.conv.kernel_size == (6, 6) and stem.conv.stride == (2, 2) and stem.conv.padding == (2, 2)
    assert not any(isinstance(m, SpaceToDepthStem) for m in rewritten.modules())
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        expected, actual = model(images), rewritten(images)
    assert expected.abs().max() > 1.0  # a real comparison, not of zeros
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-5)


def test_each_phase_goes_to_its_kernel_tap():
    """A 1x1 Focus conv on one channel: channel blocks (top-left, bottom-left, top-right,
    bottom-right) weighted 1, 10, 100, 1000 become the 2x2 stride-2 kernel [[1, 100], [10, 1000]]."""
    weight = torch.tensor([1.0, 10.0, 100.0, 1000.0]).reshape(1, 4, 1, 1)
    assert focus_weight_as_conv(weight).reshape(2, 2).tolist() == [[1.0, 100.0], [10.0, 1000.0]]
    stem = SpaceToDepthStem(1, 1, kernel_size=1, act="relu")
    with torch.no_grad():
        stem.conv.conv.weight.copy_(weight)
        stem.conv.bn.running_var.fill_(1.0 - stem.conv.bn.eps)  # BatchNorm as the identity
    stem.eval()
    image = torch.arange(16.0).reshape(1, 1, 4, 4)  # pixel (r, c) = 4r + c
    block = focus_as_conv(stem)
    assert isinstance(block, ConvBnAct) and block.conv.kernel_size == (2, 2) and block.conv.stride == (2, 2)
    with torch.no_grad():
        out = block(image)
    # output (0, 0): pixels 0, 1, 4, 5 weighted 1, 100, 10, 1000
    assert out[0, 0, 0, 0].item() == pytest.approx(0 * 1 + 1 * 100 + 4 * 10 + 5 * 1000)
    torch.testing.assert_close(out, stem(image))


def test_a_3x3_tap_lands_at_twice_its_offset_plus_the_phase():
    weight = torch.zeros(1, 4 * 2, 3, 3)
    weight[0, 2 * 2 + 1, 0, 2] = 1.0  # block 2 (top-right: dy=0, dx=1), input channel 1, tap (0, 2)
    taps = focus_weight_as_conv(weight)
    assert taps.shape == (1, 2, 6, 6)
    assert taps.nonzero().tolist() == [[0, 1, 0, 5]]  # (2*0 + 0, 2*2 + 1)


def test_a_focus_conv_one_conv_cannot_express_is_refused():
    stem = SpaceToDepthStem(2, 4, kernel_size=3)
    stem.conv.conv = nn.Conv2d(8, 4, 3, padding=1, groups=2, bias=False)
    with pytest.raises(ValueError, match="cannot be one conv"):
        focus_as_conv(nn.Sequential(stem))
