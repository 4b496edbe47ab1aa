"""Named model configurations (timm-style registry) and :func:`build_network`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from ..deprecation import warn_deprecated
from ..errors import UnknownModelError
from .anchors import YOLOV3_ANCHORS
from .coupled_head import CoupledHead
from .head import DecoupledHead
from .head_base import DetectionHead
from .necks import FPN, PAFPN
from .yolox import YOLOX

__all__ = [
    "ModelSpec", "MODEL_SPECS", "E2E_SUFFIX", "HEADS", "build_network", "build_model", "model_names", "get_spec",
]

#: the head kinds a :class:`ModelSpec` may name
HEADS = ("decoupled", "coupled")

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
    head: str = "decoupled"  # or "coupled" (YOLOv3's, the roadmap's baseline)
    anchors: tuple | None = None  # per level, (w, h) in input pixels per anchor; None: anchor-free
    assigner: str = "simota"  # the label assignment its loss uses (YoloxLoss(assigner=...))
    roadmap: bool = False  # one of the rows of the paper's Table 2 that only the roadmap has

    @property
    def detector(self) -> str:
        """The zoo name of the detector without the PSS branch (this model's own name for a base model)."""
        return self.base or self.name


def _roadmap_rows() -> tuple[ModelSpec, ...]:
    row = dict(depth=1.0, width=1.0, act="lrelu", darknet=True, roadmap=True)
    anchored = dict(row, anchors=YOLOV3_ANCHORS, assigner="yolov3")
    return (
        ModelSpec("yolox-roadmap-baseline", head="coupled", params=62_998_749, gflops=157.3, **anchored),
        ModelSpec("yolox-roadmap-decoupled", params=63_855_837, gflops=186.0, **anchored),
        ModelSpec("yolox-roadmap-strongaug", params=63_855_837, gflops=186.0, **anchored),
        ModelSpec("yolox-roadmap-anchorfree", params=63_724_767, gflops=185.3, assigner="centre", **row),
        ModelSpec("yolox-roadmap-multipos", params=63_724_767, gflops=185.3, assigner="centre3x3", **row),
    )


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
        # The rows of the paper's roadmap (Table 2) before "+SimOTA" (= yolox-darknet53): the same
        # Darknet-53 + SPP FPN, no release weights; params counted here, GFLOPs the paper's (which
        # models.info reproduces to the printed digit: tests/test_roadmap_models.py).
        *_roadmap_rows(),
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
    "yolox-darknet53": (67_295_202, 205.28),
}
E2E_SUFFIX = "-e2e"
for _base, (_params, _gflops) in _E2E_FIGURES.items():  # no -e2e variants of the roadmap rows
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
    if end_to_end and spec.roadmap:
        raise ValueError(f"{spec.name} has no end-to-end variant (the roadmap's NMS-free row is yolox-darknet53-e2e)")
    if spec.darknet:
        backbone: nn.Module = FPN(53)
        head = _build_head(spec, num_classes, 1.0, (128, 256, 512), False, act, end_to_end)
    else:
        backbone = PAFPN(depth, width, depthwise=depthwise, act=act)
        head = _build_head(spec, num_classes, width, (256, 512, 1024), depthwise, act, end_to_end)
    return YOLOX(backbone, head)


def _build_head(
    spec: ModelSpec, num_classes: int, width: float, in_channels: tuple[int, ...], depthwise: bool, act: str,
    end_to_end: bool,
) -> DetectionHead:
    """The head ``spec`` names, on pyramid maps of ``in_channels`` (before ``width``)."""
    if spec.head == "coupled":
        if spec.anchors is None:
            raise ValueError(f"{spec.name}: the coupled head needs anchors")
        channels = tuple(int(c * width) for c in in_channels)
        return CoupledHead(num_classes, in_channels=channels, act=act, anchors=spec.anchors)
    if spec.head != "decoupled":
        raise ValueError(f"{spec.name}: unknown head {spec.head!r}; expected one of {', '.join(HEADS)}")
    return DecoupledHead(
        num_classes, width, in_channels=in_channels, act=act, depthwise=depthwise, end_to_end=end_to_end,
        anchors=spec.anchors,
    )


def build_model(*args: Any, **kwargs: Any) -> YOLOX:
    """Deprecated name of :func:`build_network` (the network without a loss); warns once. The
    model with its loss is ``yoloxkit.build_model``."""
    warn_deprecated(
        "yoloxkit.models.build_model",
        "yoloxkit.models.build_model is deprecated: use yoloxkit.models.build_network (the network"
        " alone) or yoloxkit.build_model (the network with its loss)",
    )
    return build_network(*args, **kwargs)
