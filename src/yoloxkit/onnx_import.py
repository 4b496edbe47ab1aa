"""Import an official YOLOX ONNX export back into the PyTorch model.

The official export folds every BatchNorm into the preceding convolution, so the ONNX file holds
one weight and one bias per conv and no BatchNorm statistics. Importing it:

1. read the Conv nodes and, for each, the convs that feed it (the conv dataflow graph);
2. pair them with the model's ``nn.Conv2d`` modules in the model's traced forward order,
   choosing among the ONNX convs whose inputs are already paired (so that two valid execution
   orders of the same graph, e.g. a CSP block's branches, still line up), checking shapes;
3. un-fold each BatchNorm: the conv keeps the folded weight; the BN running mean ``m`` and
   variance ``v`` are calibrated from that conv's outputs on real images; ``gamma = sqrt(v + eps)``
   and ``beta = folded_bias + m``. In eval mode the BN then adds exactly the folded bias, and in
   train mode batch statistics stay close to the calibrated ones, so fine-tuning is stable;
4. check the result against onnxruntime on one calibration image.

During calibration each BN is set to (mean 0, var 1 - eps, gamma 1, beta = folded bias): the
network then computes exactly the folded function, and one pass over the calibration images
collects every conv's per-channel statistics (float64) on the activations the real model sees.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence, Union

import cv2
import numpy as np
import torch
from torch import nn

from .errors import ImageReadError, WeightsError, WeightsMismatchError
from .infer.images import IMAGE_SUFFIXES, read_image
from .infer.preprocess import PAD_VALUE, letterbox

__all__ = [
    "OnnxConv",
    "OnnxWeights",
    "read_onnx_weights",
    "guess_model_name",
    "pair_convs",
    "calibration_images",
    "import_onnx_into",
    "ImportReport",
]

logger = logging.getLogger("yoloxkit")

CALIBRATION_BATCH = 4


@dataclass(frozen=True)
class OnnxConv:
    """One Conv node of an ONNX graph with its (BN-folded) parameters."""

    index: int  # position among the graph's Conv nodes
    name: str
    weight: np.ndarray  # [out, in/groups, kh, kw] float32
    bias: np.ndarray | None  # [out] float32
    groups: int
    strides: tuple[int, ...]
    pads: tuple[int, ...]
    dilations: tuple[int, ...]
    sources: frozenset[int]  # indices of the nearest upstream Conv nodes (empty: fed by the input)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)


@dataclass(frozen=True)
class OnnxWeights:
    """What yoloxkit reads from an ONNX file: its convs and its input/output interface."""

    path: Path
    convs: list[OnnxConv]
    input_name: str
    input_shape: tuple[int | None, ...]  # None for dynamic dimensions
    output_shapes: dict[str, tuple[int | None, ...]]
    metadata: dict[str, str] = field(default_factory=dict)  # the file's metadata properties

    @property
    def num_classes(self) -> int:
        """Class count: output channels of the first prediction conv (the first conv no conv reads)."""
        consumed = set().union(*(conv.sources for conv in self.convs))
        sinks = [conv for conv in self.convs if conv.index not in consumed]
        if not sinks:
            raise WeightsError(f"{self.path}: cannot find the prediction convs of a YOLOX head")
        return int(sinks[0].weight.shape[0])

    @property
    def names(self) -> list[str] | None:
        """Class names stored in the metadata (``yoloxkit export`` writes them), else None."""
        if "names" not in self.metadata:
            return None
        try:
            names = json.loads(self.metadata["names"])
        except ValueError:
            raise WeightsError(f"{self.path}: the 'names' metadata is not a JSON list") from None
        if not isinstance(names, list) or len(names) != self.num_classes:
            raise WeightsError(f"{self.path}: the 'names' metadata does not list {self.num_classes} class names")
        return [str(n) for n in names]

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """Fixed input ``(height, width)``, or None when the export has dynamic spatial axes."""
        if len(self.input_shape) == 4 and self.input_shape[2] and self.input_shape[3]:
            return int(self.input_shape[2]), int(self.input_shape[3])
        return None


@dataclass(frozen=True)
class ImportReport:
    """Outcome of :func:`import_onnx_into`."""

    num_convs: int
    num_calibration_images: int
    max_abs_diff: float | None  # vs onnxruntime on one calibration image (None: not checked)


def _dims(value_info) -> tuple[int | None, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def read_onnx_weights(path: str | os.PathLike) -> OnnxWeights:
    """Read the Conv nodes (weights, attributes, conv-to-conv dataflow) of an ONNX file."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise WeightsError(f"cannot read ONNX file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    graph = model.graph
    if not graph.node:
        raise WeightsError(f"cannot read ONNX file {path}: the graph is empty")
    tensors = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # some exporters keep weights as Constant nodes
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    tensors[node.output[0]] = numpy_helper.to_array(attr.t)

    producers: dict[str, frozenset[int]] = {}  # tensor name -> nearest upstream convs
    convs: list[OnnxConv] = []
    for node in graph.node:
        upstream = frozenset().union(*(producers.get(name, frozenset()) for name in node.input if name))
        if node.op_type == "Conv":
            if len(node.input) < 2 or node.input[1] not in tensors:
                raise WeightsError(f"{path}: Conv node {node.name!r} has no constant weight; cannot import it")
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            weight = tensors[node.input[1]].astype(np.float32)
            bias = tensors[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else None
            data_sources = producers.get(node.input[0], frozenset())
            ndim = weight.ndim - 2
            conv = OnnxConv(
                index=len(convs),
                name=node.name or f"Conv_{len(convs)}",
                weight=weight,
                bias=bias,
                groups=int(attrs.get("group", 1)),
                strides=tuple(attrs.get("strides", [1] * ndim)),
                pads=tuple(attrs.get("pads", [0] * 2 * ndim)),
                dilations=tuple(attrs.get("dilations", [1] * ndim)),
                sources=data_sources,
            )
            convs.append(conv)
            upstream = frozenset({conv.index})
        for name in node.output:
            producers[name] = upstream
    if not convs:
        raise WeightsError(f"{path} has no Conv nodes; it is not a YOLOX ONNX export")
    initializer_names = set(tensors)
    inputs = [vi for vi in graph.input if vi.name not in initializer_names]
    if not inputs:
        raise WeightsError(f"{path} has no image input")
    outputs = {vi.name: _dims(vi) for vi in graph.output}
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    return OnnxWeights(path, convs, inputs[0].name, _dims(inputs[0]), outputs, metadata)


# ---------------------------------------------------------------------------------- model guessing


@lru_cache(maxsize=None)
def _zoo_conv_count(name: str) -> int:
    from .models import build_model

    with torch.device("meta"):
        model = build_model(name, num_classes=1)
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())


def guess_model_name(weights: OnnxWeights) -> str:
    """Guess the zoo model of an ONNX export from its conv shapes (it carries no metadata).

    A 3-channel first conv means Darknet-53; otherwise the first conv follows the space-to-depth
    stem and its output channels give the width (64 × width). Grouped convs mean depthwise (Nano).
    The conv count settles the depth. Raises :class:`WeightsMismatchError` if nothing fits.
    """
    from .models import MODEL_SPECS

    convs = weights.convs
    first = convs[0].weight
    darknet = first.shape[1] == 3
    depthwise = any(conv.groups > 1 for conv in convs)
    width = first.shape[0] / 64.0
    for spec in MODEL_SPECS.values():
        if spec.darknet != darknet or spec.depthwise != depthwise:
            continue
        if not darknet and int(64 * spec.width) != first.shape[0]:
            continue
        if _zoo_conv_count(spec.name) == len(convs):
            return spec.name
    layout = "darknet" if darknet else f"width {width:g}{', depthwise' if depthwise else ''}"
    raise WeightsMismatchError(
        f"{weights.path}: its {len(convs)} convs ({layout}) match no zoo model; pass --model NAME"
    )


# ---------------------------------------------------------------------------------- conv pairing


def _traced_convs(model: nn.Module, input_hw: tuple[int, int]) -> list[tuple[str, nn.Conv2d]]:
    """The model's ``nn.Conv2d`` modules in the order its forward pass calls them."""
    names = {module: name for name, module in model.named_modules()}
    order: list[nn.Conv2d] = []
    hooks = [
        m.register_forward_hook(lambda module, _inp, _out: order.append(module))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_hw, dtype=param.dtype, device=param.device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    seen: set[nn.Conv2d] = set()
    traced = []
    for module in order:
        if module not in seen:
            seen.add(module)
            traced.append((names[module], module))
    return traced


def _fits(conv: nn.Conv2d, onnx_conv: OnnxConv) -> bool:
    if tuple(conv.weight.shape) != onnx_conv.shape or conv.groups != onnx_conv.groups:
        return False
    if tuple(conv.stride) != tuple(onnx_conv.strides) or tuple(conv.dilation) != tuple(onnx_conv.dilations):
        return False
    pads = tuple(conv.padding) * 2 if isinstance(conv.padding, tuple) else None
    return pads is None or pads == tuple(onnx_conv.pads)


def pair_convs(model: nn.Module, weights: OnnxWeights) -> list[tuple[str, nn.Conv2d, OnnxConv]]:
    """Pair each ``nn.Conv2d`` of ``model`` (traced forward order) with its ONNX Conv node.

    For each traced conv, the candidates are the ONNX convs not yet paired whose upstream convs are
    all paired; the first candidate (in graph order) with the same shape and attributes is taken.
    Raises :class:`WeightsMismatchError` naming the first conv that has no partner.
    """
    size = weights.input_hw or (64, 64)
    traced = _traced_convs(model, (min(size[0], 128), min(size[1], 128)))
    source = str(weights.path)
    if len(traced) != len(weights.convs):
        raise WeightsMismatchError(
            f"{source} has {len(weights.convs)} convs but the model has {len(traced)}{_hint(weights)}"
        )
    paired: set[int] = set()
    pairs = []
    for name, conv in traced:
        match = None
        for candidate in weights.convs:
            if candidate.index in paired or not candidate.sources <= paired:
                continue
            if _fits(conv, candidate):
                match = candidate
                break
        if match is None:
            raise WeightsMismatchError(
                f"{source}: no ONNX conv fits {name} (shape {tuple(conv.weight.shape)}, groups {conv.groups})"
                f"{_hint(weights)}"
            )
        paired.add(match.index)
        pairs.append((name, conv, match))
    return pairs


def _hint(weights: OnnxWeights) -> str:
    try:
        name = guess_model_name(weights)
    except WeightsMismatchError:
        return ""
    return f"; it looks like {name} weights with {weights.num_classes} classes; pass --model {name}"


def _batchnorm_of(model: nn.Module) -> dict[nn.Conv2d, nn.BatchNorm2d]:
    """Map each conv to the BatchNorm that follows it (blocks hold them as ``conv`` and ``bn``)."""
    mapping = {}
    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            mapping[conv] = bn
    return mapping


# ---------------------------------------------------------------------------------- calibration


def _letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The inference letterbox as ``[3, h, w]`` float32 (BGR, 0-255): what the model sees."""
    canvas, _ = letterbox(image, size)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32)


def _demo_variations(image: np.ndarray) -> list[np.ndarray]:
    """Deterministic variations of one picture: flips, crops and scales (padding included)."""
    height, width = image.shape[:2]
    flipped = image[:, ::-1]
    variations = [image, flipped]
    for top, left, frac in ((0.0, 0.0, 0.6), (0.4, 0.4, 0.6), (0.1, 0.25, 0.75), (0.2, 0.0, 0.5)):
        y0, x0 = int(top * height), int(left * width)
        crop = image[y0 : y0 + int(frac * height), x0 : x0 + int(frac * width)]
        variations += [crop, crop[:, ::-1]]
    for scale in (0.5, 0.75):  # smaller content, more padding
        small = cv2.resize(image, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
        canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
        canvas[: small.shape[0], : small.shape[1]] = small
        variations.append(canvas)
    return [np.ascontiguousarray(v) for v in variations]


CalibrationSource = Union[Sequence[np.ndarray], str, os.PathLike, Iterable[Union[str, os.PathLike]], None]


def calibration_files(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Image files named by ``sources`` (files and/or folders, folders sorted by name)."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    paths: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImageReadError(f"no images in calibration folder {source}")
            paths += found
        elif source.is_file():
            paths.append(source)
        else:
            raise ImageReadError(f"calibration image or folder not found: {source}")
    if not paths:
        raise ImageReadError("no calibration images given")
    return paths


def _demo_calibration_images() -> list[np.ndarray]:
    from .weights import bundled_demo_image

    images = _demo_variations(read_image(bundled_demo_image()))
    logger.warning(
        "calibrating BatchNorm statistics on the bundled demo picture (%d variations); pass calibration "
        "images (--calib-images) from your data for better statistics when fine-tuning",
        len(images),
    )
    return images


def _calibration_items(calib_images: CalibrationSource) -> list[np.ndarray | Path]:
    """Arrays as given, or the files to read one batch at a time (default: the demo picture)."""
    if calib_images is None:
        return list(_demo_calibration_images())
    if isinstance(calib_images, (str, os.PathLike)):
        return list(calibration_files(calib_images))
    given = list(calib_images)
    if given and all(isinstance(item, np.ndarray) for item in given):
        return given
    return list(calibration_files(given))


def calibration_images(sources: str | os.PathLike | Iterable[str | os.PathLike] | None = None) -> list[np.ndarray]:
    """Load calibration pictures (BGR ``uint8``) from image files and/or folders.

    With no sources, use deterministic variations of the bundled demo picture (and say so).
    """
    if sources is None:
        return _demo_calibration_images()
    return [read_image(p) for p in calibration_files(sources)]


class _ChannelStats:
    """Per-channel mean and variance over (batch, height, width), merged batch by batch in float64."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, output: torch.Tensor) -> None:
        x = output.detach()
        dims = (0, 2, 3)
        n = x.numel() // x.shape[1]
        mean = x.sum(dim=dims, dtype=torch.float64) / n
        centered = x - mean.to(x.dtype)[None, :, None, None]  # centre first: no cancellation
        shift = centered.sum(dim=dims, dtype=torch.float64) / n  # float rounding of the centring
        m2 = (centered * centered).sum(dim=dims, dtype=torch.float64) - shift * shift * n
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def var(self) -> torch.Tensor:
        assert self.m2 is not None
        return self.m2 / self.count


def _onnx_reference(weights: OnnxWeights, batch: np.ndarray) -> np.ndarray | None:
    """Run the ONNX file on ``batch`` [1, 3, h, w]; return the ``[1, A, 5 + C]`` output, if any."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
    options.log_severity_level = 3
    session = ort.InferenceSession(str(weights.path), options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {weights.input_name: batch})
    for out in outputs:
        if out.ndim == 3 and out.shape[0] == batch.shape[0] and out.shape[2] == 5 + weights.num_classes:
            return out
    return None


def import_onnx_into(
    model: nn.Module,
    weights: OnnxWeights | str | os.PathLike,
    calib_images: CalibrationSource = None,
    size: tuple[int, int] | None = None,
    verify: bool = True,
    progress: bool = False,
) -> ImportReport:
    """Load an ONNX export's folded conv weights into ``model`` and un-fold its BatchNorms.

    ``calib_images``: BGR arrays, image paths or folders (default: the bundled demo picture).
    Images are letterboxed to ``size`` (default: the ONNX input size, else 416), as the model sees
    them. With ``verify``, the model's eval output is compared with onnxruntime on the first
    calibration image and a :class:`WeightsMismatchError` is raised if they disagree.
    """
    if not isinstance(weights, OnnxWeights):
        weights = read_onnx_weights(weights)
    if size is None:
        size = weights.input_hw or (416, 416)
    pairs = pair_convs(model, weights)
    batchnorms = _batchnorm_of(model)

    items = _calibration_items(calib_images)

    def load_batch(start: int) -> np.ndarray:  # read and letterbox one batch at a time
        chunk = items[start : start + CALIBRATION_BATCH]
        return np.stack([_letterbox(i if isinstance(i, np.ndarray) else read_image(i), size) for i in chunk])

    was_training = model.training
    model.eval()
    param = next(model.parameters())
    stats: dict[nn.Conv2d, _ChannelStats] = {}
    hooks = []
    with torch.no_grad():
        for name, conv, onnx_conv in pairs:
            conv.weight.copy_(torch.from_numpy(onnx_conv.weight))
            bias = (
                torch.from_numpy(onnx_conv.bias)
                if onnx_conv.bias is not None
                else torch.zeros(conv.out_channels)
            )
            bn = batchnorms.get(conv)
            if bn is None:
                if conv.bias is None:
                    if bias.abs().max() > 0:
                        raise WeightsMismatchError(f"{weights.path}: conv {name} has no bias to take the ONNX bias")
                else:
                    conv.bias.copy_(bias)
                continue
            if conv.bias is not None:
                conv.bias.zero_()
            # Calibration state: BN adds exactly the folded bias.
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)
            statistic = stats[conv] = _ChannelStats()
            hooks.append(conv.register_forward_hook(lambda _m, _i, out, s=statistic: s.update(out)))
        try:
            batches = range(0, len(items), CALIBRATION_BATCH)
            if progress:
                from tqdm import tqdm

                batches = tqdm(batches, desc="calibrating BatchNorm", unit="batch")
            first_image = None
            for start in batches:
                batch = load_batch(start)
                first_image = batch[:1] if first_image is None else first_image
                model(torch.from_numpy(batch).to(param.device, param.dtype))
        finally:
            for hook in hooks:
                hook.remove()
        for conv, statistic in stats.items():
            bn = batchnorms[conv]
            mean = statistic.mean.to(bn.running_mean.dtype)
            var = statistic.var.to(bn.running_var.dtype)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(statistic.var + bn.eps).to(bn.weight.dtype))
            bn.bias.add_(mean)
            bn.num_batches_tracked.zero_()

    max_diff = None
    if verify:
        max_diff = _verify(model, weights, first_image)
    model.train(was_training)
    return ImportReport(len(pairs), len(items), max_diff)


def _verify(model: nn.Module, weights: OnnxWeights, batch: np.ndarray) -> float | None:
    """Compare the model's eval output with onnxruntime's on ``batch``; raise if they disagree."""
    if weights.input_hw is not None and tuple(batch.shape[2:]) != weights.input_hw:
        return None
    reference = _onnx_reference(weights, batch)
    if reference is None:
        logger.info("%s: no [B, A, 5 + C] output to check the import against", weights.path)
        return None
    head = getattr(model, "head", None)
    decode = getattr(head, "decode_in_inference", None)
    param = next(model.parameters())
    best = float("inf")
    try:
        for decoded in (False, True):  # exports come with or without in-graph decoding
            if head is not None:
                head.decode_in_inference = decoded
            with torch.no_grad():
                ours = model(torch.from_numpy(batch).to(param.device, param.dtype)).float().cpu().numpy()
            if ours.shape == reference.shape:
                best = min(best, float(np.abs(ours - reference).max()))
            if best <= 1e-3:
                break
    finally:
        if head is not None and decode is not None:
            head.decode_in_inference = decode
    scale = max(1.0, float(np.abs(reference).max()))
    if not best <= 1e-3 * scale:
        raise WeightsMismatchError(
            f"{weights.path}: the imported model does not reproduce the ONNX outputs (max abs diff {best:.3g});"
            " the file may not be a YOLOX export of this model"
        )
    return best
