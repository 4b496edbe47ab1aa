"""The decoupled head: forward pass only (box decoding: :mod:`.head_base`).

Anchor-free by default (one prediction per location, every YOLOX model); with ``anchors`` it
predicts ``A`` boxes per location in output groups (:mod:`.anchors`), the "+decoupled head" row of
the paper's roadmap.

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

import torch
from torch import nn

from .anchors import Anchors, split_anchor_channels
from .blocks import ConvBnAct, conv_block
from .head_base import DetectionHead, LevelOutput, decode_outputs, flatten_levels, make_grid
from .selection_cues import NUM_CUES, selection_cues

__all__ = ["DecoupledHead", "LevelOutput", "PSS_KEY_PREFIXES", "is_pss_key", "make_grid", "decode_outputs", "flatten_levels"]

#: state-dict key prefixes (within the head) of the PSS branch of an end-to-end head
PSS_KEY_PREFIXES = ("pss_cues.", "pss_convs.", "pss_preds.")


def is_pss_key(key: str) -> bool:
    """Whether a YOLOX model's state-dict or parameter name (``head.pss_convs.0...``) belongs to the
    PSS branch of an end-to-end head."""
    return any(key.startswith("head." + prefix) for prefix in PSS_KEY_PREFIXES)


class DecoupledHead(DetectionHead):
    """YOLOX head: per level a 1×1 stem, then two 3×3 convs for classification and two for
    regression, with separate cls / reg / obj prediction convs.

    ``end_to_end=True`` adds the PSS branch (module docstring). ``anchors`` (per level a tuple of
    ``(w, h)`` in input pixels, e.g. :data:`.anchors.YOLOV3_ANCHORS`) makes it anchor-based, the
    "+decoupled head" row of the paper's Table 2: the prediction convs output ``A·C``, ``4A`` and
    ``A`` channels (anchor-major) and ``forward_levels`` returns one group per (level, anchor).
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
        anchors: Anchors | None = None,
    ) -> None:
        super().__init__()
        if anchors is not None and end_to_end:
            raise ValueError("an end-to-end (PSS) head is anchor-free: anchors cannot be combined with end_to_end")
        self.num_classes = num_classes
        self.end_to_end = end_to_end
        anchors = self._set_groups(strides, anchors)
        per_level = [len(level) for level in anchors] if anchors is not None else [1] * len(in_channels)
        Conv = conv_block(depthwise)
        hidden = int(256 * width)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.cls_preds = nn.ModuleList()
        self.reg_preds = nn.ModuleList()
        self.obj_preds = nn.ModuleList()
        self.stems = nn.ModuleList()
        for channels, a in zip(in_channels, per_level):
            self.stems.append(ConvBnAct(int(channels * width), hidden, 1, 1, act=act))
            self.cls_convs.append(nn.Sequential(Conv(hidden, hidden, 3, 1, act=act), Conv(hidden, hidden, 3, 1, act=act)))
            self.reg_convs.append(nn.Sequential(Conv(hidden, hidden, 3, 1, act=act), Conv(hidden, hidden, 3, 1, act=act)))
            self.cls_preds.append(nn.Conv2d(hidden, a * num_classes, 1, 1, 0))
            self.reg_preds.append(nn.Conv2d(hidden, a * 4, 1, 1, 0))
            self.obj_preds.append(nn.Conv2d(hidden, a, 1, 1, 0))
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

    def initialize_biases(self, prior_prob: float = 0.01) -> None:
        """Set cls/obj prediction biases so that the initial sigmoid equals ``prior_prob``."""
        value = -math.log((1 - prior_prob) / prior_prob)
        for conv in list(self.cls_preds) + list(self.obj_preds) + list(getattr(self, "pss_preds", [])):
            nn.init.constant_(conv.bias, value)

    def forward_levels(self, features: tuple[torch.Tensor, ...]) -> list[LevelOutput]:
        """Raw outputs (regression, objectness logits, class logits), one per output group: one
        per level, or with anchors one per (level, anchor), level-major."""
        return self.forward_with_pss(features, with_pss=False)[0]

    def forward_with_pss(
        self, features: tuple[torch.Tensor, ...], with_pss: bool = True
    ) -> tuple[list[LevelOutput], list[torch.Tensor] | None]:
        """Raw per-group outputs and, for an end-to-end head, the PSS logits ``[B, 1, H, W]`` per
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
            if self.anchors is None:
                outputs.append((reg, obj_logits, cls_logits))
            else:
                a = len(self.anchors[k])
                parts = (split_anchor_channels(t, a) for t in (reg, obj_logits, cls_logits))
                outputs.extend(zip(*parts))
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
        """Inference output ``[B, A, 5 + C]`` (group by group, row-major); decoded to input pixels
        with the groups' size priors unless ``decode_in_inference`` is False (the official ONNX
        interface). An end-to-end head's objectness channel holds ``σ(obj)·σ(pss)``."""
        levels, pss = self.forward_with_pss(features)
        if pss is None:
            scored = [(r, o.sigmoid(), c.sigmoid()) for r, o, c in levels]
        else:
            scored = [(r, o.sigmoid() * p.sigmoid(), c.sigmoid()) for (r, o, c), p in zip(levels, pss)]
        return self.inference_output(scored)
