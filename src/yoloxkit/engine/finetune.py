"""Initialising a model for fine-tuning from any checkpoint, whatever its class list.

Backbone, neck and head tensors load when their shapes match. Class-prediction rows map by
class name when both sides have names (a COCO checkpoint fine-tuned on a subset of COCO keeps
the rows of the shared classes); rows without a match keep their fresh prior-0.01 initialisation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from ..coco_names import fallback_names
from ..errors import WeightsMismatchError
from ..models import anchor_based
from ..models.blocks import ConvBnAct
from ..models.head import is_pss_key
from ..weights import WeightsFile

__all__ = ["FineTuneReport", "load_for_finetune", "map_classes", "rescale_folded_convs"]

_CLS_PRED = re.compile(r"^head\.cls_preds\.\d+\.(weight|bias)$")


@dataclass
class FineTuneReport:
    """What :func:`load_for_finetune` did."""

    source: str
    loaded: int = 0
    total: int = 0
    skipped: list[str] = field(default_factory=list)
    mapped_classes: list[str] = field(default_factory=list)
    new_classes: list[str] = field(default_factory=list)
    reinitialised: bool = False
    assumed_coco: bool = False
    from_onnx: bool = False

    def message(self) -> str:
        text = f"loaded {self.loaded}/{self.total} tensors from {self.source}"
        if self.assumed_coco:
            text += " (checkpoint has no class names; its 80 classes are taken as COCO's)"
        if self.reinitialised:
            text += (
                f"; class prediction layers re-initialised for {len(self.mapped_classes) + len(self.new_classes)}"
                f" classes, {len(self.mapped_classes)} mapped by name from the checkpoint"
            )
            if self.new_classes:
                shown = ", ".join(self.new_classes[:5]) + (" ..." if len(self.new_classes) > 5 else "")
                text += f", {len(self.new_classes)} new ({shown})"
        if self.from_onnx:
            text += "; weights un-folded from an ONNX export"
        fresh = [k for k in self.skipped if is_pss_key(k)]
        others = [k for k in self.skipped if not is_pss_key(k)]
        if fresh:
            text += f"; the PSS branch ({len(fresh)} tensors) is not in the file and starts fresh"
        if others:
            text += f"; {len(others)} tensors with other shapes kept their initialisation (e.g. {others[0]})"
        return text


def map_classes(target: list[str], source: list[str] | None) -> list[int | None]:
    """For each target class, the index of the source class with the same name (or ``None``)."""
    if not source:
        return [None] * len(target)
    index = {name: i for i, name in enumerate(source)}
    return [index.get(name) for name in target]


def _converted_from_onnx(ckpt: dict) -> bool:
    """Whether a checkpoint was converted from an ONNX export (its BatchNorms un-folded)."""
    source = ckpt.get("source")
    return isinstance(source, str) and "onnx" in source.lower()


def _read_source(path: str | os.PathLike, model_name: str | None) -> tuple[dict, list[str] | None, bool]:
    """``(state dict, class names, un-folded from ONNX)`` of ``path``, read once."""
    opened = WeightsFile.at(path, model_name)
    state, names = opened.state_dict()
    from_onnx = opened.format.name == "onnx" or _converted_from_onnx(opened.contents.checkpoint)
    return state, names, from_onnx


@torch.no_grad()
def rescale_folded_convs(model: nn.Module, target_norm: float = 1.0) -> int:
    """Scale up, per output channel, every conv weight followed by BatchNorm whose norm is below
    ``target_norm``, adjusting the BN running statistics so that the network computes the same
    function. Returns the number of convs changed.

    Weights un-folded from an ONNX export keep the folded kernels, which are shrunk by
    ``gamma / sqrt(var)`` (the stem, fed 0-255 pixels, by ~100x). BatchNorm makes the loss
    invariant to that scale but the gradient grows as its inverse, so SGD at the official
    learning rate would wreck those layers in a few steps; this restores ordinary scales. A unit
    norm per channel (above PyTorch's initial 1/sqrt(3), as trained kernels usually are) gave
    the best fine-tuning of the bundled nano weights (see the trainer's report)."""
    changed = 0
    for module in model.modules():
        if not isinstance(module, ConvBnAct):
            continue
        weight, bn = module.conv.weight, module.bn
        norms = weight.flatten(1).norm(dim=1)
        scale = (target_norm / norms.clamp_min(1e-12)).clamp_min(1.0)
        if bool((scale > 1.0).any()):
            weight.mul_(scale.view(-1, 1, 1, 1))
            bn.running_mean.mul_(scale)
            bn.running_var.copy_(scale.square() * (bn.running_var + bn.eps) - bn.eps)
            changed += 1
    return changed


def load_for_finetune(
    model: nn.Module, path: str | os.PathLike, names: list[str], model_name: str | None = None
) -> FineTuneReport:
    """Load ``path`` (a ``.pth`` checkpoint, or an ``.onnx`` export of ``model_name``) into
    ``model`` (whose classes are ``names``) for fine-tuning."""
    state, source_names, from_onnx = _read_source(path, model_name)
    report = FineTuneReport(source=str(path), from_onnx=from_onnx)
    own = model.state_dict()
    report.total = len(own)
    source_classes = None
    cls_keys = [k for k in state if _CLS_PRED.match(k) and k.endswith("bias")]
    if cls_keys:
        source_classes = int(state[cls_keys[0]].shape[0])
    if source_names is None and source_classes is not None and fallback_names(source_classes) is not None:
        source_names, report.assumed_coco = fallback_names(source_classes), True
    same_classes = source_names is not None and list(source_names) == list(names)
    if source_names is None and source_classes == len(names):
        same_classes = True  # nothing to map by; same class count: take the rows as they are
    rows = map_classes(list(names), source_names)
    if anchor_based(model):
        rows = [None] * len(names)  # an anchor-based head interleaves its class rows per anchor: no mapping

    new_state: dict[str, torch.Tensor] = {}
    trunk_total = trunk_loaded = 0
    for key, value in own.items():
        if _CLS_PRED.match(key):
            if key not in state:
                report.skipped.append(key)
                continue
            if same_classes and tuple(state[key].shape) == tuple(value.shape):
                new_state[key] = state[key]
                report.loaded += 1
                continue
            report.reinitialised = True
            merged = value.clone()
            src = state[key]
            for j, i in enumerate(rows):
                if i is not None and i < src.shape[0] and tuple(src[i].shape) == tuple(merged[j].shape):
                    merged[j] = src[i]
            new_state[key] = merged
            report.loaded += 1
            continue
        trunk_total += 1
        if key in state and tuple(state[key].shape) == tuple(value.shape):
            new_state[key] = state[key]
            report.loaded += 1
            trunk_loaded += 1
        else:
            report.skipped.append(key)
    if trunk_total and trunk_loaded < trunk_total // 2:
        raise WeightsMismatchError(
            f"{path} does not fit this model: only {trunk_loaded}/{trunk_total} tensors match"
            " (it belongs to another model size; check --model)"
        )
    if report.reinitialised:
        report.mapped_classes = [n for n, i in zip(names, rows) if i is not None]
        report.new_classes = [n for n, i in zip(names, rows) if i is None]
    model.load_state_dict(new_state, strict=False)
    return report
