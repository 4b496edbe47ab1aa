"""What an export produces: the options every format shares and the result it reports."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from ..deprecation import warn_deprecated
from ..errors import ExportError
from ..infer.defaults import DEFAULT_CONF, DEFAULT_MAX_DETS, DEFAULT_NMS
from ..weights.formats import export_format_names, find_format
from .nms_graph import NMS_OUTPUT_NAMES

__all__ = [
    "FORMATS", "MIN_OPSET", "MAX_OPSET", "DEFAULT_OPSET", "DEFAULT_TOPK", "ExportOptions", "ExportResult",
    "options_for_model", "default_suffix",
]

logger = logging.getLogger("yoloxkit")

#: the export formats, from the one format registry (:mod:`yoloxkit.weights.formats`)
FORMATS = export_format_names()
DEFAULT_OPSET = 11  # like the official export
MIN_OPSET = 11  # NonMaxSuppression, ScatterND and the Resize modes the model needs
MAX_OPSET = 20  # newest opset of torch's TorchScript-based exporter
DEFAULT_TOPK = 100  # detections per image of a --topk graph: COCO's maxDets


@dataclass(frozen=True)
class ExportOptions:
    """Options shared by all formats.

    ``size`` is the input (height, width); ``batch`` the example batch size. ``dynamic`` makes the
    batch and spatial dimensions dynamic; ``decode`` decodes boxes inside the graph (output
    ``[B, A, 5+C]`` with cx, cy, w, h in input pixels); ``nms`` appends decoding, best-class
    selection and class-aware NMS (outputs ``num_dets, boxes, scores, class_ids``); ``topk``
    (K, for end-to-end models) appends decoding, best-class selection, the ``conf`` threshold and
    TopK, without NMS (the same four outputs, K per image). ``nms`` and ``topk`` exclude each
    other; :func:`options_for_model` turns ``nms`` into ``topk`` for an end-to-end model.
    ``half`` stores the weights in float16 (the edge formats that offer it: ncnn, MNN, LiteRT).
    """

    size: tuple[int, int] = (640, 640)
    batch: int = 1
    dynamic: bool = False
    decode: bool = False
    nms: bool = False
    opset: int = DEFAULT_OPSET
    conf: float = DEFAULT_CONF
    nms_iou: float = DEFAULT_NMS
    max_dets: int = DEFAULT_MAX_DETS
    topk: int | None = None
    simplify: bool = True
    half: bool = False
    # Written into every export's metadata with its size and output interface
    # (:func:`~.graph.export_entries`); yoloxkit reads them back when it runs the file.
    names: tuple[str, ...] | None = None
    model_name: str | None = None

    @property
    def detections(self) -> bool:
        """Whether the graph outputs final detections (``nms`` or ``topk``)."""
        return bool(self.nms or self.topk)

    @property
    def interface(self) -> str:
        """The output interface stored in the metadata: ``raw``, ``decoded``, ``nms`` or ``topk``."""
        return "topk" if self.topk else "nms" if self.nms else "decoded" if self.decode else "raw"


@dataclass(frozen=True)
class ExportResult:
    """Where an export was written and how closely its runtime reproduced PyTorch."""

    path: Path
    format: str
    output_names: tuple[str, ...]
    max_abs_diff: float
    runtime: str
    precision: str = "float32"  # of the weights: "float32", or "float16" (--half)
    ms: float | None = None  # median latency of the file in its runtime, batch 1, the export's threads
    reference_ms: float | None = None  # the same for the float ONNX graph in ``reference_runtime``
    reference_runtime: str | None = None

    def summary(self) -> str:
        weights = "" if self.precision == "float32" else f" ({self.precision} weights)"
        text = (
            f"exported {self.format}{weights} to {self.path} (outputs: {', '.join(self.output_names)}); "
            f"verified in {self.runtime}: max abs diff vs PyTorch {self.max_abs_diff:.3g}"
        )
        if self.ms is not None and self.reference_ms is not None:
            text += (f"; {self.ms:.1f} ms per image here vs {self.reference_ms:.1f} ms in"
                     f" {self.reference_runtime} ({self.reference_ms / self.ms:.2f}x)")
        return text


def default_suffix(fmt: str) -> str:
    """Deprecated: ``find_format(fmt).output_suffix`` (``.onnx``, ``.torchscript``, ``.xml``)."""
    warn_deprecated("yoloxkit.export.options.default_suffix", "yoloxkit.export.options.default_suffix is"
                    " deprecated; use yoloxkit.weights.find_format(fmt).output_suffix")
    entry = find_format(fmt)
    if entry is None or entry.writer is None:
        raise KeyError(fmt)
    return entry.output_suffix


def output_names(options: ExportOptions) -> tuple[str, ...]:
    """The graph's output names: the official ``output``, or the four detection outputs."""
    return NMS_OUTPUT_NAMES if options.detections else ("output",)


def options_for_model(options: ExportOptions, end_to_end: bool, anchor_based: bool = False) -> ExportOptions:
    """``options`` checked for the model they export: for an end-to-end (NMS-free) model ``nms``
    becomes ``topk`` (K = ``max_dets``; a warning on logger ``yoloxkit`` says so), since its
    scores need no NMS; a ``topk`` graph of a base model is allowed (it keeps the overlapping
    duplicates NMS would remove; a warning says so). ``nms`` with ``topk`` is an error. An
    ``anchor_based`` model (a roadmap row with YOLOv3 anchors) exports decoded boxes instead of the
    raw interface, which cannot be decoded without its anchor sizes (a warning says so)."""
    if options.topk is not None and int(options.topk) < 1:
        raise ExportError(f"invalid --topk {options.topk}: it must be >= 1")
    if options.nms and options.topk:
        raise ExportError("--nms and --topk exclude each other: --topk is the NMS-free graph of -e2e models")
    name = options.model_name or "the model"
    if options.nms and end_to_end:
        logger.warning("%s is NMS-free: --nms exports the top-k graph (--topk %d, no NMS; --nms-iou is ignored)",
                       name, options.max_dets)
        return dataclasses.replace(options, nms=False, topk=int(options.max_dets))
    if anchor_based and options.interface == "raw":
        logger.warning("%s predicts from anchor priors: its raw outputs cannot be decoded without them, so the"
                       " export decodes boxes in the graph (as --decode)", name)
        options = dataclasses.replace(options, decode=True)
    if options.topk and not end_to_end:
        logger.warning("%s is not end-to-end: its --topk graph keeps overlapping duplicate boxes (no NMS);"
                       " --nms removes them", name)
    return options


def default_output_path(model_name: str, fmt: str, options: ExportOptions) -> Path:
    """``yolox-nano.onnx``, ``yolox-nano-nms.onnx``, ``yolox-nano-e2e-topk.onnx``,
    ``yolox-nano_openvino/yolox-nano.xml``, ``yolox-nano-fp16_ncnn/yolox-nano-fp16.param`` ..."""
    suffix = "-topk" if options.topk else "-nms" if options.nms else "-decoded" if options.decode else ""
    half = "-fp16" if options.half else ""
    return find_format(fmt).output_path(model_name + half + suffix)
