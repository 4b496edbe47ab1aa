"""Named model configurations (timm-style registry) and :func:`build_network`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from ..deprecation import warn_deprecated
from ..errors import UnknownModelError
from .head import DecoupledHead
from .necks import FPN, PAFPN
from .yolox import YOLOX

__all__ = ["ModelSpec", "MODEL_SPECS", "E2E_SUFFIX", "build_network", "build_model", "model_names", "get_spec"]

RELEASE_URL = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/"


@dataclass(frozen=True)
class ModelSpec:
    """Architecture and pretrained metadata of one named model."""

    name: str
    depth: float
    width: float
    depthwise: bool = False
    act: str = "silu"
    darknet: bool = False
    input_size: int = 640
    params: int = 0  # at 80 classes
    gflops: float = 0.0  # paper table, at input_size
    coco_ap: float = 0.0  # official release weights, COCO val2017
    weights_url: str = ""
    licence: str = "Apache-2.0"
    end_to_end: bool = False  # the NMS-free variant: the PSS branch on the head
    base: str = ""  # an end-to-end model's base detector (whose weights it loads); "" for a base model

    @property
    def detector(self) -> str:
        """The zoo name of the detector without the PSS branch (this model's own name for a base model)."""
        return self.base or self.name


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("yolox-nano", 0.33, 0.25, depthwise=True, input_size=416, params=912_159, gflops=1.08,
                  coco_ap=25.8, weights_url=RELEASE_URL + "yolox_nano.pth"),
        ModelSpec("yolox-tiny", 0.33, 0.375, input_size=416, params=5_055_855, gflops=6.45, coco_ap=32.8,
                  weights_url=RELEASE_URL + "yolox_tiny.pth"),
        ModelSpec("yolox-s", 0.33, 0.50, params=8_968_255, gflops=26.8, coco_ap=40.5,
                  weights_url=RELEASE_URL + "yolox_s.pth"),
        ModelSpec("yolox-m", 0.67, 0.75, params=25_326_495, gflops=73.8, coco_ap=46.9,
                  weights_url=RELEASE_URL + "yolox_m.pth"),
        ModelSpec("yolox-l", 1.0, 1.0, params=54_208_895, gflops=155.6, coco_ap=49.7,
                  weights_url=RELEASE_URL + "yolox_l.pth"),
        ModelSpec("yolox-x", 1.33, 1.25, params=99_071_455, gflops=281.9, coco_ap=51.1,
                  weights_url=RELEASE_URL + "yolox_x.pth"),
        ModelSpec("yolox-darknet53", 1.0, 1.0, act="lrelu", darknet=True, params=63_724_767, gflops=185.3,
                  coco_ap=47.7, weights_url=RELEASE_URL + "yolox_darknet.pth"),
    )
}

# The end-to-end variants: the same detectors plus the PSS branch. Figures counted here with
# models.info (params at 80 classes; GFLOPs at the base's input size); official weights are the
# base model's (the PSS branch then starts fresh), none of them has a release of its own.
_E2E_FIGURES = {
    "yolox-nano": (955_170, 1.18),
    "yolox-tiny": (5_565_330, 7.66),
    "yolox-s": (9_868_738, 31.85),
    "yolox-m": (27_340_770, 85.04),
    "yolox-l": (57_779_330, 175.65),
    "yolox-x": (104_640_418, 313.12),
    "yolox-darknet53": (67_295_202, 205.07),
}
E2E_SUFFIX = "-e2e"
for _base, (_params, _gflops) in _E2E_FIGURES.items():
    _spec = MODEL_SPECS[_base]
    MODEL_SPECS[_base + E2E_SUFFIX] = replace(
        _spec, name=_base + E2E_SUFFIX, params=_params, gflops=_gflops, coco_ap=0.0, end_to_end=True, base=_base
    )

_ALIASES = {"darknet53": "yolox-darknet53", "yolov3": "yolox-darknet53", "yolox-darknet": "yolox-darknet53"}


def model_names() -> list[str]:
    """Names accepted by :func:`build_network` (and ``yoloxkit.build_model``)."""
    return list(MODEL_SPECS)


def get_spec(name: str) -> ModelSpec:
    """Look up a named model (``yolox-s``, ``yolox_s`` and ``s`` are all accepted, each also with
    an ``-e2e`` suffix)."""
    key = name.strip().lower().replace("_", "-")
    suffix = E2E_SUFFIX if key.endswith(E2E_SUFFIX) else ""
    key = key[: len(key) - len(suffix)]
    key = _ALIASES.get(key, key)
    if not key.startswith("yolox-"):
        key = _ALIASES.get("yolox-" + key, "yolox-" + key)
    key += suffix
    if key not in MODEL_SPECS:
        raise UnknownModelError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_SPECS)}")
    return MODEL_SPECS[key]


def build_network(
    name: str | None = "yolox-s",
    num_classes: int = 80,
    *,
    depth: float | None = None,
    width: float | None = None,
    depthwise: bool | None = None,
    act: str | None = None,
    end_to_end: bool | None = None,
) -> YOLOX:
    """Build a YOLOX network (no loss attached: ``yoloxkit.build_model`` adds it) by name, or by
    ``depth``/``width`` (``name=None``).

    Keyword overrides replace the named configuration's values. BatchNorm uses eps 1e-3,
    momentum 0.03; prediction biases start at prior 0.01, as in the official recipe.
    ``end_to_end=True`` (or an ``-e2e`` name) adds the PSS branch of the NMS-free variant; the
    detector's parameters and state-dict keys are those of the base model.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if name is None:
        if depth is None or width is None:
            raise ValueError("build_network(None, ...) needs both depth= and width=")
        spec = ModelSpec("custom", depth, width)
    else:
        spec = get_spec(name)
    depth = spec.depth if depth is None else depth
    width = spec.width if width is None else width
    depthwise = spec.depthwise if depthwise is None else depthwise
    act = spec.act if act is None else act
    end_to_end = spec.end_to_end if end_to_end is None else end_to_end
    if spec.darknet:
        backbone: nn.Module = FPN(53)
        head = DecoupledHead(num_classes, 1.0, in_channels=(128, 256, 512), act=act, end_to_end=end_to_end)
    else:
        backbone = PAFPN(depth, width, depthwise=depthwise, act=act)
        head = DecoupledHead(num_classes, width, depthwise=depthwise, act=act, end_to_end=end_to_end)
    return YOLOX(backbone, head)


def build_model(*args: Any, **kwargs: Any) -> YOLOX:
    """Deprecated name of :func:`build_network` (the network without a loss); warns once. The
    model with its loss is ``yoloxkit.build_model``."""
    warn_deprecated(
        "yoloxkit.models.build_model",
        "yoloxkit.models.build_model is deprecated: use yoloxkit.models.build_network (the network"
        " alone) or yoloxkit.build_model (the network with its loss)",
    )
    return build_network(*args, **kwargs)
