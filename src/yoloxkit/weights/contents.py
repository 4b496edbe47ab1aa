"""What a weights file holds, read once: one reader per file format, each returning an object
that describes the file (:class:`WeightsInfo`) and, where the format holds PyTorch weights,
loads them into a model.

- :class:`CheckpointContents`: a ``.pth`` checkpoint (official or yoloxkit's);
- :class:`OnnxContents`: an ONNX export (its folded convs are un-folded by :mod:`.unfold`);
- :class:`ExportContents`: a file that runs only in its runtime (OpenVINO IR, TorchScript).

:mod:`.formats` maps each file format to its reader.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..coco_names import fallback_names
from ..errors import WeightsError, WeightsMismatchError
from ..models import build_network, get_spec
from .calibration import CalibrationSource
from .checkpoint import load_state_dict_checked, read_checkpoint, stored_input_size
from .exported import ExportInfo, onnx_export_info, openvino_export_info, torchscript_export_info
from .identify import guess_model_name, identify_state_dict, num_classes_of
from .onnx_reader import OnnxWeights, read_onnx_weights
from .sidecar import sidecar_export_info
from .unfold import import_onnx_into

__all__ = [
    "CheckpointContents", "ExportContents", "OnnxContents", "WeightsInfo", "default_names",
    "read_checkpoint_file", "read_onnx_file", "read_openvino_file", "read_torchscript_file", "read_ncnn_file",
    "read_mnn_file", "read_tflite_file", "runtime_only_error",
]

logger = logging.getLogger("yoloxkit")


@dataclass(frozen=True)
class WeightsInfo:
    """What a weights file says about the model it belongs to (read without building a model)."""

    path: Path
    format: str  # "checkpoint", "onnx", "openvino" or "torchscript"
    model_name: str | None  # stored, or identified from the shapes; None if unknown
    num_classes: int | None
    names: list[str] | None  # stored class names (checkpoints; files exported by yoloxkit)
    #: the size the model was trained at (checkpoints) or exported at (exports), ``(h, w)``; None if unknown
    input_size: tuple[int, int] | None = None
    #: exports: the output interface, fixed size and NMS settings; None for checkpoints
    export: ExportInfo | None = None


def default_names(num_classes: int, source: str | os.PathLike) -> list[str] | None:
    """COCO names for an 80-class file without names (official exports are COCO models), else None."""
    names = fallback_names(num_classes)
    if names is not None:
        return names
    logger.info("%s stores no class names and has %d classes; names default to class ids", source, num_classes)
    return None


@dataclass(frozen=True)
class CheckpointContents:
    """A ``.pth`` checkpoint as read by :func:`~.checkpoint.read_checkpoint` (``ckpt["model"]``
    the state dict; optional ``names``, ``model_name``, ``input_size``, ...)."""

    path: Path
    checkpoint: dict[str, Any]

    def describe(self, identify: bool = True) -> WeightsInfo:
        """The stored model name (else, with ``identify``, the zoo model its shapes match)."""
        state = self.checkpoint["model"]
        stored = self.checkpoint.get("model_name")
        name = stored if isinstance(stored, str) else identify_state_dict(state) if identify else None
        return WeightsInfo(self.path, "checkpoint", name, num_classes_of(state), self.stored_names(),
                           stored_input_size(self.checkpoint, self.path))

    def stored_names(self) -> list[str] | None:
        names = self.checkpoint.get("names")
        return list(names) if names is not None else None

    def load_into(self, model: nn.Module, calib_images: CalibrationSource = None) -> list[str] | None:
        """Load the state dict strictly; the stored class names (None for official files)."""
        load_state_dict_checked(model, self.checkpoint["model"], str(self.path))
        return self.stored_names()

    def state_dict(self, model_name: str | None = None) -> tuple[dict[str, torch.Tensor], list[str] | None]:
        """The tensors as stored and the class names."""
        return self.checkpoint["model"], self.stored_names()


@dataclass(frozen=True)
class OnnxContents:
    """An ONNX export as read by :func:`~.onnx_reader.read_onnx_weights`."""

    path: Path
    onnx: OnnxWeights

    def describe(self, identify: bool = True) -> WeightsInfo:
        """The metadata's model name (else, with ``identify``, the zoo model its convs match)."""
        export = onnx_export_info(self.onnx)
        name: str | None = export.model_name
        if identify and name is None:
            try:
                name = guess_model_name(self.onnx)
            except WeightsMismatchError:
                pass
        return WeightsInfo(self.path, "onnx", name, self.onnx.num_classes, self.onnx.names, export.input_size, export)

    def load_into(self, model: nn.Module, calib_images: CalibrationSource = None) -> list[str] | None:
        """Import the folded convs, each BatchNorm calibrated on ``calib_images`` (default: the
        bundled demo picture); the stored names, else COCO's for 80 classes, else None."""
        if "quantization" in self.onnx.metadata:
            raise WeightsError(
                f"{self.path} is an INT8 export: it runs in predict, eval, serve and benchmark (onnxruntime,"
                " openvino) but holds no float weights to load; use the .pth it was exported from"
            )
        import_onnx_into(model, self.onnx, calib_images)
        stored = self.onnx.names
        return stored if stored is not None else default_names(self.onnx.num_classes, self.path)

    def state_dict(self, model_name: str | None = None) -> tuple[dict[str, torch.Tensor], list[str] | None]:
        """The un-folded state dict of ``model_name``'s model (BatchNorms calibrated) and the names."""
        if model_name is None:
            raise WeightsMismatchError(f"{self.path}: fine-tuning from ONNX needs the model name (--model)")
        model = build_network(get_spec(model_name).name, num_classes=self.onnx.num_classes)
        names = self.load_into(model)
        return model.eval().state_dict(), names


@dataclass(frozen=True)
class ExportContents:
    """A file that runs in its own runtime only (OpenVINO IR, TorchScript): described, never loaded."""

    path: Path
    export: ExportInfo
    label: str  # "an OpenVINO IR", "a TorchScript export"

    def describe(self, identify: bool = True) -> WeightsInfo:
        e = self.export
        return WeightsInfo(self.path, e.kind, e.model_name, e.num_classes, e.names, e.input_size, e)

    def load_into(self, model: nn.Module, calib_images: CalibrationSource = None) -> list[str] | None:
        raise runtime_only_error(self.path, self.label)

    def state_dict(self, model_name: str | None = None) -> tuple[dict[str, torch.Tensor], list[str] | None]:
        raise runtime_only_error(self.path, self.label)


def runtime_only_error(path: Path, label: str) -> WeightsError:
    """The one-line error for an export that runs only in its runtime where PyTorch weights are
    needed (``label``: ``an OpenVINO IR``, ``a TorchScript export``)."""
    return WeightsError(
        f"{path} is {label}: it runs in predict, eval, serve and benchmark but holds no PyTorch"
        " weights to load; use the .pth or .onnx it was exported from"
    )


def read_checkpoint_file(path: Path) -> CheckpointContents:
    return CheckpointContents(path, read_checkpoint(path))


def read_onnx_file(path: Path) -> OnnxContents:
    return OnnxContents(path, read_onnx_weights(path))


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    return path


def read_openvino_file(path: Path) -> ExportContents:
    return ExportContents(path, openvino_export_info(_existing(path)), "an OpenVINO IR")


def read_torchscript_file(path: Path) -> ExportContents:
    return ExportContents(path, torchscript_export_info(_existing(path)), "a TorchScript export")


def read_ncnn_file(path: Path) -> ExportContents:
    """An ncnn model: ``STEM.param`` with its weights ``STEM.bin`` and metadata beside it."""
    weights = _existing(path).with_suffix(".bin")
    if not weights.is_file():
        raise WeightsError(f"ncnn model {path} needs its weights file {weights.name} beside it (not found)")
    return ExportContents(path, sidecar_export_info(path, "ncnn"), "an ncnn model")


def read_mnn_file(path: Path) -> ExportContents:
    return ExportContents(path, sidecar_export_info(_existing(path), "mnn"), "an MNN model")


def read_tflite_file(path: Path) -> ExportContents:
    return ExportContents(path, sidecar_export_info(_existing(path), "tflite"), "a LiteRT (.tflite) model")
