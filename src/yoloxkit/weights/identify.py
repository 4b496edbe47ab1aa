"""Which zoo model a weights file belongs to, read from its tensor shapes alone.

A state dict is matched key by key and shape by shape against each zoo model (built on the meta
device: no memory, no initialisation cost). An ONNX export carries no key names, so its model is
guessed from its convolutions: the first conv's layout, grouped convs and the conv count.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from ..errors import WeightsMismatchError
from ..models import MODEL_SPECS, build_network
from .onnx_reader import OnnxWeights

__all__ = ["identify_state_dict", "num_classes_of", "mismatch_hint", "guess_model_name", "guess_hint"]


@lru_cache(maxsize=None)
def _zoo_model_shapes(name: str, num_classes: int) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = build_network(name, num_classes=num_classes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@lru_cache(maxsize=None)
def _zoo_conv_count(name: str) -> int:
    with torch.device("meta"):
        model = build_network(name, num_classes=1)
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())


def num_classes_of(state: dict[str, torch.Tensor]) -> int | None:
    """Class count of a YOLOX state dict (rows of its first class-prediction conv), or None."""
    weight = state.get("head.cls_preds.0.weight")
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.ndim >= 1 else None


def identify_state_dict(state: dict[str, torch.Tensor]) -> str | None:
    """Name of the zoo model whose keys and shapes match ``state`` (any class count), or None. The
    roadmap rows are left out: their checkpoints name their model, and two of them share
    yolox-darknet53's shapes."""
    num_classes = num_classes_of(state)
    if num_classes is None:
        return None
    shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    for name, spec in MODEL_SPECS.items():
        if not spec.roadmap and _zoo_model_shapes(name, num_classes) == shapes:
            return name
    return None


def mismatch_hint(state: dict[str, torch.Tensor], model: nn.Module) -> str:
    """``it looks like yolox-s weights; pass --model yolox-s``, or a class-count note."""
    name = identify_state_dict(state)
    file_classes = num_classes_of(state)
    model_classes = getattr(model, "num_classes", None)
    if name is None:
        return "it belongs to another model size or class count (check --model)"
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model_classes is not None and _zoo_model_shapes(name, model_classes) == own:
        return f"it is {name} with {file_classes} classes, the model has {model_classes}"
    return f"it looks like {name} weights; pass --model {name}"


def guess_model_name(weights: OnnxWeights) -> str:
    """Guess the zoo model of an ONNX export from its conv shapes (it carries no key names).

    A 3-channel first conv means Darknet-53; otherwise the first conv follows the space-to-depth
    stem and its output channels give the width (64 × width). Grouped convs mean depthwise (Nano).
    The conv count settles the depth. Raises :class:`WeightsMismatchError` if nothing fits.
    """
    convs = weights.convs
    first = convs[0].weight
    darknet = first.shape[1] == 3
    depthwise = any(conv.groups > 1 for conv in convs)
    width = first.shape[0] / 64.0
    for spec in MODEL_SPECS.values():
        if spec.darknet != darknet or spec.depthwise != depthwise or spec.roadmap:
            continue  # a roadmap row's export always names its model
        if not darknet and int(64 * spec.width) != first.shape[0]:
            continue
        if _zoo_conv_count(spec.name) == len(convs):
            return spec.name
    layout = "darknet" if darknet else f"width {width:g}{', depthwise' if depthwise else ''}"
    raise WeightsMismatchError(
        f"{weights.path}: its {len(convs)} convs ({layout}) match no zoo model; pass --model NAME"
    )


def guess_hint(weights: OnnxWeights) -> str:
    """``; it looks like yolox-s weights with 80 classes; pass --model yolox-s``, or nothing."""
    try:
        name = guess_model_name(weights)
    except WeightsMismatchError:
        return ""
    return f"; it looks like {name} weights with {weights.num_classes} classes; pass --model {name}"
