"""The Focus stem as one convolution, for converters that cannot slice with a step of 2 (pnnx).

The Focus stem (:class:`~yoloxkit.models.blocks.SpaceToDepthStem`) stacks the 2x2 pixel
phases of its input ``[N, C, H, W]`` into ``[N, 4C, H/2, W/2]`` (channel block ``b`` holds phase
``(dy, dx)`` = ``(0,0), (1,0), (0,1), (1,1)`` for ``b`` = 0..3: YOLOX's order) and applies a conv
of kernel ``k``, stride ``s`` and padding ``p``. Its tap ``(a, b)`` on channel ``blk*C + c``
reads input pixel ``(2(y*s - p + a) + dy, 2(x*s - p + b) + dx)`` of channel ``c``, so the same
sum is one conv on the input itself with kernel ``2k``, stride ``2s``, padding ``2p`` and weight
``W'[o, c, 2a + dy, 2b + dx] = W[o, blk*C + c, a, b]``: the official 3x3 stride-1 Focus conv
becomes a 6x6 stride-2 conv with padding 2. Zero padding maps onto zero padding (a padded
phase row ``i < 0`` is input row ``2i + dy < 0``), so the outputs are equal, for even H and W
(the only sizes the Focus stem accepts).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.blocks import SpaceToDepthStem

__all__ = ["focus_as_conv", "focus_weight_as_conv"]

#: the channel block of each 2x2 phase ``(dy, dx)`` in the Focus stem's concatenation
PHASE_BLOCKS = {(0, 0): 0, (1, 0): 1, (0, 1): 2, (1, 1): 3}


def focus_weight_as_conv(weight: torch.Tensor) -> torch.Tensor:
    """The ``[O, C, 2k, 2k]`` weight of one conv on the input equal to a Focus conv weight
    ``[O, 4C, k, k]`` on its space-to-depth image (see the module docstring for the tap map)."""
    out_channels, in_channels4, kh, kw = weight.shape
    channels = in_channels4 // 4
    result = weight.new_zeros(out_channels, channels, 2 * kh, 2 * kw)
    for (dy, dx), block in PHASE_BLOCKS.items():
        result[:, :, dy::2, dx::2] = weight[:, block * channels:(block + 1) * channels]
    return result


def _as_conv(focus: nn.Conv2d) -> nn.Conv2d:
    """The single conv equal to ``focus`` applied after the 2x2 space-to-depth; ValueError for
    a conv it cannot express (groups, dilation, a padding mode other than zeros)."""
    if focus.groups != 1 or focus.dilation != (1, 1) or focus.padding_mode != "zeros":
        raise ValueError("the Focus stem's conv has groups, dilation or non-zero padding: it cannot be one conv")
    if not isinstance(focus.padding, tuple) or focus.in_channels % 4:
        raise ValueError(f"the Focus stem's conv has padding {focus.padding!r} and {focus.in_channels} inputs")
    kh, kw = focus.kernel_size
    conv = nn.Conv2d(
        focus.in_channels // 4, focus.out_channels, (2 * kh, 2 * kw),
        stride=(2 * focus.stride[0], 2 * focus.stride[1]),
        padding=(2 * focus.padding[0], 2 * focus.padding[1]),
        bias=focus.bias is not None,
    ).to(device=focus.weight.device, dtype=focus.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(focus_weight_as_conv(focus.weight))
        if focus.bias is not None:
            conv.bias.copy_(focus.bias)
    conv.weight.requires_grad_(focus.weight.requires_grad)
    return conv


def focus_as_conv(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with every Focus stem replaced by its conv block (``ConvBnAct``:
    the same BatchNorm and activation) whose conv reads the input directly (kernel ``2k``,
    stride ``2s``). ``module`` itself is not changed; one without a Focus stem comes back as an
    equal copy. ValueError for a Focus conv that one conv cannot express."""
    result = copy.deepcopy(module)
    if isinstance(result, SpaceToDepthStem):
        return _stem_block(result)
    for parent in list(result.modules()):
        for attr, child in list(parent.named_children()):
            if isinstance(child, SpaceToDepthStem):
                setattr(parent, attr, _stem_block(child))
    return result


def _stem_block(stem: SpaceToDepthStem) -> nn.Module:
    """The stem's conv block with its conv replaced by the equivalent conv on the input."""
    block = stem.conv
    block.conv = _as_conv(block.conv)
    return block
