"""What an export produces: the options every format shares and the result it reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .nms_graph import NMS_OUTPUT_NAMES

__all__ = ["FORMATS", "MIN_OPSET", "MAX_OPSET", "DEFAULT_OPSET", "ExportOptions", "ExportResult", "default_suffix"]

FORMATS = ("onnx", "torchscript", "openvino")
DEFAULT_OPSET = 11  # like the official export
MIN_OPSET = 11  # NonMaxSuppression, ScatterND and the Resize modes the model needs
MAX_OPSET = 20  # newest opset of torch's TorchScript-based exporter


@dataclass(frozen=True)
class ExportOptions:
    """Options shared by all formats.

    ``size`` is the input (height, width); ``batch`` the example batch size. ``dynamic`` makes the
    batch and spatial dimensions dynamic; ``decode`` decodes boxes inside the graph (output
    ``[B, A, 5+C]`` with cx, cy, w, h in input pixels); ``nms`` appends decoding, best-class
    selection and class-aware NMS (outputs ``num_dets, boxes, scores, class_ids``).
    """

    size: tuple[int, int] = (640, 640)
    batch: int = 1
    dynamic: bool = False
    decode: bool = False
    nms: bool = False
    opset: int = DEFAULT_OPSET
    conf: float = 0.25
    nms_iou: float = 0.45
    max_dets: int = 100
    simplify: bool = True
    # Written into every export's metadata with its size and output interface
    # (:func:`~.graph.export_entries`); yoloxkit reads them back when it runs the file.
    names: tuple[str, ...] | None = None
    model_name: str | None = None


@dataclass(frozen=True)
class ExportResult:
    """Where an export was written and how closely its runtime reproduced PyTorch."""

    path: Path
    format: str
    output_names: tuple[str, ...]
    max_abs_diff: float
    runtime: str

    def summary(self) -> str:
        return (
            f"exported {self.format} to {self.path} (outputs: {', '.join(self.output_names)}); "
            f"verified in {self.runtime}: max abs diff vs PyTorch {self.max_abs_diff:.3g}"
        )


def default_suffix(fmt: str) -> str:
    """File suffix of a format: ``.onnx``, ``.torchscript`` or ``.xml`` (OpenVINO IR)."""
    return {"onnx": ".onnx", "torchscript": ".torchscript", "openvino": ".xml"}[fmt]


def output_names(options: ExportOptions) -> tuple[str, ...]:
    """The graph's output names: the official ``output``, or the four NMS outputs."""
    return NMS_OUTPUT_NAMES if options.nms else ("output",)


def default_output_path(model_name: str, fmt: str, options: ExportOptions) -> Path:
    """``yolox-nano.onnx``, ``yolox-nano-nms.onnx``, ``yolox-nano_openvino/yolox-nano.xml`` ..."""
    stem = model_name + ("-nms" if options.nms else "-decoded" if options.decode else "")
    if fmt == "openvino":
        return Path(f"{stem}_openvino") / f"{stem}.xml"
    return Path(stem + default_suffix(fmt))
