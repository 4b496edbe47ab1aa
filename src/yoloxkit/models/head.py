"""The anchor-free decoupled head: forward pass and box decoding only.

Assignment and losses live in :mod:`yoloxkit.assign` and :mod:`yoloxkit.losses`.

The end-to-end (NMS-free) variant of the paper (§2.1, after PSS, Zhou et al. 2021) adds a
positive-sample-selector branch per level: two convs of the head's hidden width on a *detached*
copy of the regression features (stop-gradient: its loss never reaches the detector), then a
1-channel 1×1 prediction conv. The branch also reads the detector's selection cues
(:mod:`.selection_cues`: whether the anchor's score is the maximum of its 3D neighbourhood, after
DeFCN) beside its input features, so that its 3×3 convs compare each anchor with its neighbours:
the first 3×3 conv reads them as extra input channels, or, in a depthwise head (nano), whose
depthwise 3×3 cannot mix channels, a 1×1 conv mixes them into the features first. In eval mode
its sigmoid multiplies the objectness, so the output keeps the ``[B, A, 5 + C]`` layout and
every consumer reads the final score ``σ(obj)·σ(pss)·σ(cls)`` where it read ``σ(obj)·σ(cls)``.
The detector's keys are unchanged; the branch adds ``pss_convs.*`` and ``pss_preds.*`` (and
``pss_cues.*``, the depthwise head's mixer).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..errors import YoloxkitError
from .blocks import ConvBnAct, conv_block
from .selection_cues import NUM_CUES, selection_cues

__all__ = ["DecoupledHead", "LevelOutput", "PSS_KEY_PREFIXES", "is_pss_key", "make_grid", "decode_outputs", "flatten_levels"]

# Per level: (reg [B,4,H,W], obj logits [B,1,H,W], cls logits [B,C,H,W]).
LevelOutput = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

#: state-dict key prefixes (within the head) of the PSS branch of an end-to-end head
PSS_KEY_PREFIXES = ("pss_cues.", "pss_convs.", "pss_preds.")


def is_pss_key(key: str) -> bool:
    """Whether a YOLOX model's state-dict or parameter name (``head.pss_convs.0...``) belongs to the
    PSS branch of an end-to-end head."""
    return any(key.startswith("head." + prefix) for prefix in PSS_KEY_PREFIXES)


class DecoupledHead(nn.Module):
    """YOLOX head: per level a 1×1 stem, then two 3×3 convs for classification and two for
    regression, with separate cls / reg / obj prediction convs.

    ``end_to_end=True`` adds the PSS branch (module docstring).
    """

    def __init__(
        self,
        num_classes: int,
        width: float = 1.0,
        strides: tuple[int, ...] = (8, 16, 32),
        in_channels: tuple[int, ...] = (256, 512, 1024),
        act: str = "silu",
        depthwise: bool = False,
        prior_prob: float = 0.01,
        end_to_end: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.end_to_end = end_to_end
        self.strides = tuple(strides)
        self.decode_in_inference = True
        Conv = conv_block(depthwise)
        hidden = int(256 * width)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.cls_preds = nn.ModuleList()
        self.reg_preds = nn.ModuleList()
        self.obj_preds = nn.ModuleList()
        self.stems = nn.ModuleList()
        for channels in in_channels:
            self.stems.append(ConvBnAct(int(channels * width), hidden, 1, 1, act=act))
            self.cls_convs.append(nn.Sequential(Conv(hidden, hidden, 3, 1, act=act), Conv(hidden, hidden, 3, 1, act=act)))
            self.reg_convs.append(nn.Sequential(Conv(hidden, hidden, 3, 1, act=act), Conv(hidden, hidden, 3, 1, act=act)))
            self.cls_preds.append(nn.Conv2d(hidden, num_classes, 1, 1, 0))
            self.reg_preds.append(nn.Conv2d(hidden, 4, 1, 1, 0))
            self.obj_preds.append(nn.Conv2d(hidden, 1, 1, 1, 0))
        if end_to_end:
            # A depthwise 3×3 cannot combine the cue channels with the features, so a depthwise
            # head mixes them in with a 1×1 conv first; a regular 3×3 reads them directly.
            first_in = hidden if depthwise else hidden + NUM_CUES
            self.pss_convs = nn.ModuleList(
                nn.Sequential(Conv(first_in, hidden, 3, 1, act=act), Conv(hidden, hidden, 3, 1, act=act))
                for _ in in_channels
            )
            if depthwise:
                self.pss_cues = nn.ModuleList(nn.Conv2d(hidden + NUM_CUES, hidden, 1, 1, 0) for _ in in_channels)
            self.pss_preds = nn.ModuleList(nn.Conv2d(hidden, 1, 1, 1, 0) for _ in in_channels)
        self.initialize_biases(prior_prob)
        self._criterion = None  # the loss of the model that carries this head (see ``use_l1``)
        self._use_l1_request: bool | None = None  # ``use_l1`` set while no criterion is attached

    def __setattr__(self, name: str, value: object) -> None:
        if name == "criterion":  # a plain attribute even when the criterion is an nn.Module
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def criterion(self) -> Callable | None:
        """The loss of the model that carries this head (``YOLOX.criterion`` is stored here, so
        that ``use_l1``, the official switch, reaches it); None for a network without a loss."""
        return self._criterion

    @criterion.setter
    def criterion(self, criterion: Callable | None) -> None:
        self.__dict__["_criterion"] = criterion
        if criterion is not None and self._use_l1_request is not None:
            request, self.__dict__["_use_l1_request"] = self._use_l1_request, None
            self.use_l1 = request

    @property
    def use_l1(self) -> bool:
        """The official switch of the L1 term (``model.head.use_l1 = True``): the same flag as the
        criterion's ``use_l1``. Set on a head without a criterion, it is kept and handed to the
        criterion attached next; a criterion without the switch refuses ``True`` loudly."""
        if self._criterion is None:
            return bool(self._use_l1_request)
        return bool(getattr(self._criterion, "use_l1", False))

    @use_l1.setter
    def use_l1(self, value: bool) -> None:
        if value not in (True, False):
            raise ValueError(f"use_l1 must be True or False, got {value!r}")
        if self._criterion is None:
            self.__dict__["_use_l1_request"] = bool(value)
        elif hasattr(self._criterion, "use_l1"):
            self._criterion.use_l1 = bool(value)
        elif value:
            raise YoloxkitError(
                f"the model's criterion ({type(self._criterion).__name__}) has no use_l1 switch: the L1 term"
                " cannot be switched on"
            )

    def initialize_biases(self, prior_prob: float = 0.01) -> None:
        """Set cls/obj prediction biases so that the initial sigmoid equals ``prior_prob``."""
        value = -math.log((1 - prior_prob) / prior_prob)
        for conv in list(self.cls_preds) + list(self.obj_preds) + list(getattr(self, "pss_preds", [])):
            nn.init.constant_(conv.bias, value)

    def forward_levels(self, features: tuple[torch.Tensor, ...]) -> list[LevelOutput]:
        """Raw per-level outputs (regression, objectness logits, class logits)."""
        return self.forward_with_pss(features, with_pss=False)[0]

    def forward_with_pss(
        self, features: tuple[torch.Tensor, ...], with_pss: bool = True
    ) -> tuple[list[LevelOutput], list[torch.Tensor] | None]:
        """Raw per-level outputs and, for an end-to-end head, the PSS logits ``[B, 1, H, W]`` per
        level (None otherwise, or with ``with_pss=False``). The PSS branch reads the regression
        features and the selection cues detached, so nothing of the detector gets a gradient
        from it."""
        outputs, branch_inputs = [], [] if with_pss and self.end_to_end else None
        for k, x in enumerate(features):
            x = self.stems[k](x)
            cls_feat = self.cls_convs[k](x)
            cls_logits = self.cls_preds[k](cls_feat)
            reg_feat = self.reg_convs[k](x)
            reg = self.reg_preds[k](reg_feat)
            obj_logits = self.obj_preds[k](reg_feat)
            outputs.append((reg, obj_logits, cls_logits))
            if branch_inputs is not None:
                branch_inputs.append(reg_feat.detach())
        if branch_inputs is None:
            return outputs, None
        cues = selection_cues([o for _, o, _ in outputs], [c for _, _, c in outputs])
        mixers = getattr(self, "pss_cues", None)
        pss = []
        for k, (feat, cue) in enumerate(zip(branch_inputs, cues)):
            x = torch.cat([feat, cue.to(feat.dtype)], dim=1)
            if mixers is not None:
                x = mixers[k](x)
            pss.append(self.pss_preds[k](self.pss_convs[k](x)))
        return outputs, pss

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Inference output ``[B, A, 5 + C]``; decoded to input pixels unless
        ``decode_in_inference`` is False (the official ONNX interface). An end-to-end head's
        objectness channel holds ``σ(obj)·σ(pss)``."""
        levels, pss = self.forward_with_pss(features)
        if pss is None:
            scored = [(r, o.sigmoid(), c.sigmoid()) for r, o, c in levels]
        else:
            scored = [(r, o.sigmoid() * p.sigmoid(), c.sigmoid()) for (r, o, c), p in zip(levels, pss)]
        outputs = flatten_levels(scored)
        if not self.decode_in_inference:
            return outputs
        shapes = [tuple(r.shape[-2:]) for r, _, _ in levels]
        return decode_outputs(outputs, shapes, self.strides)


def flatten_levels(levels: list[LevelOutput]) -> torch.Tensor:
    """Concatenate per-level maps into ``[B, A, 5 + C]`` (stride order, row-major)."""
    maps = [torch.cat(parts, dim=1).flatten(start_dim=2) for parts in levels]
    return torch.cat(maps, dim=2).permute(0, 2, 1)


def make_grid(
    shapes: list[tuple[int, int]], strides: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor-point grid ``[A, 2]`` (x, y cell indices) and per-anchor stride ``[A, 1]``."""
    grids, anchor_strides = [], []
    for (h, w), stride in zip(shapes, strides):
        ys, xs = torch.meshgrid(
            torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype), indexing="ij"
        )
        grids.append(torch.stack((xs, ys), dim=2).reshape(-1, 2))
        anchor_strides.append(torch.full((h * w, 1), float(stride), device=device, dtype=dtype))
    return torch.cat(grids), torch.cat(anchor_strides)


def decode_outputs(
    outputs: torch.Tensor, shapes: list[tuple[int, int]], strides: tuple[int, ...]
) -> torch.Tensor:
    """Map raw regression ``(dx, dy, log w, log h)`` to ``(cx, cy, w, h)`` in input pixels."""
    grid, stride = make_grid(shapes, strides, outputs.dtype, outputs.device)
    centers = (outputs[..., :2] + grid) * stride
    sizes = torch.exp(outputs[..., 2:4]) * stride
    return torch.cat([centers, sizes, outputs[..., 4:]], dim=-1)
