"""The one entry point for weights files: which format a file is, what it says about its model,
and loading it (``.pth`` checkpoints, official or yoloxkit's, and official ``.onnx`` exports).
OpenVINO IR (``.xml``) and TorchScript exports are described here too (:func:`weights_format`,
:func:`describe_weights`); they run in their runtime's backend, not as a PyTorch model.

:func:`resolve_weights_source` picks the file a model uses: an explicit path, or a zoo name (or
nothing: the model's own weights), meaning the bundled yolox-nano COCO checkpoint or a cached
download of the official release checkpoint (:mod:`.hub`). This module is the only place that
tells the formats apart.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from torch import nn

from ..coco_names import fallback_names
from ..errors import DatasetError, UnknownModelError, WeightsError, WeightsMismatchError
from ..models import build_model, get_spec, model_names
from ..names import read_names_file as names_file
from ..packaged import BUNDLED_MODEL, bundled_weights_path
from .calibration import CalibrationSource
from . import hub
from .checkpoint import load_state_dict_checked, read_checkpoint, save_checkpoint, stored_input_size
from .exported import (
    ExportInfo,
    is_torchscript_archive,
    onnx_export_info,
    openvino_export_info,
    torchscript_export_info,
)
from .identify import guess_model_name, identify_state_dict, num_classes_of
from .onnx_reader import OnnxWeights, read_onnx_weights
from .unfold import import_onnx_into

__all__ = [
    "WeightsInfo",
    "WeightsSource",
    "is_onnx_file",
    "weights_format",
    "load_weights",
    "describe_weights",
    "resolve_weights",
    "resolve_weights_source",
    "build_model_with_weights",
    "LoadedModel",
    "load_model",
    "load_state",
    "convert_weights",
    "read_names_file",
]

logger = logging.getLogger("yoloxkit")


WeightsFormat = Literal["checkpoint", "onnx", "openvino", "torchscript"]


def is_onnx_file(path: str | os.PathLike) -> bool:
    """True for ``.onnx`` files (official exports, imported by :mod:`.unfold`)."""
    return Path(path).suffix.lower() == ".onnx"


def weights_format(path: str | os.PathLike) -> WeightsFormat:
    """Which kind of file ``path`` is: ``onnx`` (by suffix), ``openvino`` (an ``.xml`` IR),
    ``torchscript`` (a ``torch.jit.save`` archive, whatever its suffix) or ``checkpoint``
    (anything else, read as a ``.pth``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".xml":
        return "openvino"
    if path.is_file() and is_torchscript_archive(path):
        return "torchscript"
    return "checkpoint"


def _export_info(path: Path, fmt: WeightsFormat) -> ExportInfo:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if fmt == "openvino":
        return openvino_export_info(path)
    return torchscript_export_info(path)


def _default_names(num_classes: int, source: str | os.PathLike) -> list[str] | None:
    """COCO names for an 80-class file without names (official exports are COCO models), else None."""
    names = fallback_names(num_classes)
    if names is not None:
        return names
    logger.info("%s stores no class names and has %d classes; names default to class ids", source, num_classes)
    return None


def load_weights(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    calib_images: CalibrationSource = None,
) -> list[str] | None:
    """Load weights from ``path`` into ``model`` strictly; return the class names, if known.

    ``.pth`` (official or yoloxkit checkpoints): the stored names, or None for official files.
    OpenVINO and TorchScript exports cannot be loaded into a module (:class:`WeightsError`).
    ``.onnx`` (official exports): the folded convs are imported and each BatchNorm is calibrated on
    ``calib_images`` (default: the bundled demo picture); returns the names stored in the file's
    metadata (``yoloxkit export`` writes them), else the COCO names for an 80-class file (official
    exports are COCO models), else None.
    """
    if is_onnx_file(path):
        return _load_onnx(model, read_onnx_weights(path), calib_images)
    _refuse_runtime_export(Path(path))
    ckpt = read_checkpoint(path)
    load_state_dict_checked(model, ckpt["model"], str(path))
    names = ckpt.get("names")
    return list(names) if names is not None else None


def _load_onnx(model: nn.Module, onnx_weights: OnnxWeights, calib_images: CalibrationSource) -> list[str] | None:
    """Import already-read ONNX weights into ``model``; return the stored or default class names."""
    if "quantization" in onnx_weights.metadata:
        raise WeightsError(
            f"{onnx_weights.path} is an INT8 export: it runs in predict, eval, serve and benchmark (onnxruntime,"
            " openvino) but holds no float weights to load; use the .pth it was exported from"
        )
    import_onnx_into(model, onnx_weights, calib_images)
    stored = onnx_weights.names
    return stored if stored is not None else _default_names(onnx_weights.num_classes, onnx_weights.path)


def _refuse_runtime_export(path: Path) -> None:
    """A one-line error for an OpenVINO or TorchScript export where PyTorch weights are needed."""
    fmt = weights_format(path)
    if fmt in ("openvino", "torchscript"):
        label = "an OpenVINO IR" if fmt == "openvino" else "a TorchScript export"
        raise WeightsError(
            f"{path} is {label}: it runs in predict, eval, serve and benchmark but holds no PyTorch"
            " weights to load; use the .pth or .onnx it was exported from"
        )


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


def describe_weights(path: str | os.PathLike) -> WeightsInfo:
    """Model name, class count, names and input size of a weights file (a checkpoint or any
    file ``yoloxkit export`` writes), so the right model or backend can be built for it."""
    path = Path(path)
    fmt = weights_format(path)
    if fmt == "onnx":
        return _describe_onnx(path, read_onnx_weights(path))
    if fmt in ("openvino", "torchscript"):
        export = _export_info(path, fmt)
        return WeightsInfo(path, fmt, export.model_name, export.num_classes, export.names, export.input_size, export)
    return _describe_checkpoint(path, read_checkpoint(path))


def _describe_onnx(path: Path, onnx_weights: OnnxWeights, identify: bool = True) -> WeightsInfo:
    export = onnx_export_info(onnx_weights)
    name: str | None = export.model_name
    if identify and name is None:
        try:
            name = guess_model_name(onnx_weights)
        except WeightsMismatchError:
            pass
    names = onnx_weights.names
    return WeightsInfo(path, "onnx", name, onnx_weights.num_classes, names, export.input_size, export)


def _describe_checkpoint(path: Path, ckpt: dict[str, Any], identify: bool = True) -> WeightsInfo:
    state = ckpt["model"]
    stored = ckpt.get("model_name")
    name = stored if isinstance(stored, str) else identify_state_dict(state) if identify else None
    names = ckpt.get("names")
    return WeightsInfo(
        path, "checkpoint", name, num_classes_of(state), list(names) if names is not None else None,
        stored_input_size(ckpt, path),
    )


WeightsKind = Literal["file", "bundled", "official"]


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights come from: a file given by path, the bundled checkpoint, or the
    official release download (``path`` is then its place in the cache)."""

    path: Path
    kind: WeightsKind
    model_name: str | None  # the zoo model a bundled or official file belongs to; None for a file
    url: str | None = None  # the release URL of an official file

    def describe(self) -> str:
        """A short phrase for a log line, e.g. ``the bundled yolox-nano COCO weights (PATH)``."""
        detector = get_spec(self.model_name).detector if self.model_name else None
        if self.kind == "bundled":
            return f"the bundled {detector} COCO weights ({self.path})"
        if self.kind == "official":
            return f"the official {detector} COCO weights ({self.path}, from {self.url})"
        return str(self.path)

    def label(self) -> str:
        """The weights in a word or two, for a command's first line: ``bundled``,
        ``official PATH`` (the cached download) or the file's path."""
        if self.kind == "bundled":
            return "bundled"
        return f"official {self.path}" if self.kind == "official" else str(self.path)


def _zoo_name(weights: str | os.PathLike) -> str | None:
    """The zoo model ``weights`` names (``yolox-s``, ``yolox_s``, ...), or None if it names none.
    Only full names starting with ``yolox`` count: a missing file called ``s`` or ``x`` is an
    error, never a download."""
    text = os.fspath(weights)
    if not text.strip().lower().startswith("yolox") or "/" in text or os.sep in text:
        return None
    try:
        return get_spec(text).name
    except UnknownModelError:
        return None


def resolve_weights_source(
    model_name: str | None,
    weights: str | os.PathLike | None = None,
    *,
    scratch_hint: bool = False,
) -> WeightsSource:
    """Where the weights of ``model_name`` come from.

    ``weights`` is an existing file, or a zoo name (``yolox-s``; a file of that name wins), or
    None for ``model_name``'s own weights. A zoo model's weights are the bundled COCO checkpoint
    for yolox-nano and the official release checkpoint otherwise, downloaded once into the cache;
    a failed download raises :class:`~yoloxkit.errors.DownloadError` naming the URL and
    ``--weights PATH`` (and ``--weights none`` with ``scratch_hint``, for training). A model name
    and a weights name that differ raise :class:`WeightsMismatchError`.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_file():
            return WeightsSource(path, "file", None)
        named = _zoo_name(weights)
        if named is None:
            raise WeightsError(
                f"weights file not found: {weights} (nor is it a zoo name: {', '.join(model_names())})"
            )
        if model_name is not None and get_spec(model_name).detector != get_spec(named).detector:
            raise WeightsMismatchError(
                f"model {model_name} and weights {os.fspath(weights)} name different zoo models; "
                f"drop one or make them agree"
            )
        model_name = model_name or named
    if model_name is None:
        raise WeightsError("give a model name or a weights file")
    # An end-to-end model's own weights are its base detector's (the PSS branch starts fresh).
    spec = get_spec(model_name)
    name = spec.detector
    if name == BUNDLED_MODEL:
        bundled = bundled_weights_path()
        if not bundled.is_file():
            raise WeightsError(f"bundled weights missing from the package ({bundled}); reinstall yoloxkit")
        return WeightsSource(bundled, "bundled", spec.name)
    url = hub.official_weights_url(name)
    path = hub.download_official(name, url=url, scratch_hint=scratch_hint)
    return WeightsSource(path, "official", spec.name, url)


def resolve_weights(model_name: str | None, weights: str | os.PathLike | None = None) -> Path:
    """The weights file to use for ``model_name``: :func:`resolve_weights_source`'s path."""
    return resolve_weights_source(model_name, weights).path


@dataclass(frozen=True)
class LoadedModel:
    """A model built for a weights file and loaded from it (:func:`load_model`)."""

    model: nn.Module  # eval mode
    names: list[str] | None  # stored class names (or the COCO names of an 80-class ONNX file)
    model_name: str
    info: WeightsInfo  # what the file says (its stored input size, ...)


def load_model(
    model_name: str | None,
    weights: str | os.PathLike | None = None,
    *,
    calib_images: CalibrationSource = None,
) -> LoadedModel:
    """Build the model a weights file belongs to and load it, keeping what the file says.

    ``weights`` is a file or a zoo name (:func:`resolve_weights_source`); with ``weights=None`` the
    default weights of ``model_name`` are used. ``model_name`` (if given, else the zoo name in
    ``weights``) wins over the name stored in or guessed from the file; the class count always comes
    from the file. OpenVINO and TorchScript exports hold no PyTorch weights (:class:`WeightsError`).
    """
    source = resolve_weights_source(model_name, weights)
    path, model_name = source.path, model_name or source.model_name
    # Each file is read once: its description and its weights come from the same read.
    if is_onnx_file(path):
        onnx_weights = read_onnx_weights(path)
        info = _describe_onnx(path, onnx_weights, identify=not model_name)
    else:
        _refuse_runtime_export(path)
        ckpt = read_checkpoint(path)
        info = _describe_checkpoint(path, ckpt, identify=not model_name)
    name = get_spec(model_name).name if model_name else info.model_name
    if name is None:
        raise WeightsMismatchError(f"{path} matches no zoo model; pass --model NAME")
    model = build_model(name, num_classes=info.num_classes or 80)
    if info.format == "onnx":
        names = _load_onnx(model, onnx_weights, calib_images)
    else:
        load_state_dict_checked(model, ckpt["model"], str(path))
        names = info.names
    return LoadedModel(model.eval(), names, name, info)


def build_model_with_weights(
    model_name: str | None,
    weights: str | os.PathLike | None = None,
    *,
    calib_images: CalibrationSource = None,
) -> tuple[nn.Module, list[str] | None, str]:
    """:func:`load_model` as ``(model, names, model_name)``; the model is in eval mode."""
    loaded = load_model(model_name, weights, calib_images=calib_images)
    return loaded.model, loaded.names, loaded.model_name


def load_state(path: str | os.PathLike, model_name: str | None = None) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """The state dict and class names of a weights file or zoo name, whatever its format (for fine-tuning).

    A checkpoint gives its tensors as stored and its names (None for official files). An ONNX
    export is read once and un-folded into ``model_name``'s model (BatchNorms calibrated).
    """
    source = resolve_weights_source(model_name, path)
    path, model_name = source.path, model_name or source.model_name
    if is_onnx_file(path):
        if model_name is None:
            raise WeightsMismatchError(f"{path}: fine-tuning from ONNX needs the model name (--model)")
        model, names, _ = build_model_with_weights(model_name, path)
        return model.state_dict(), names
    _refuse_runtime_export(path)
    ckpt = read_checkpoint(path)
    names = ckpt.get("names")
    return ckpt["model"], list(names) if names is not None else None


def read_names_file(path: str | os.PathLike) -> list[str]:
    """Class names from a names file (:func:`yoloxkit.names.read_names_file`), errors as :class:`WeightsError`."""
    try:
        return names_file(path)
    except DatasetError as exc:
        raise WeightsError(str(exc)) from None


def convert_weights(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    model_name: str | None = None,
    calib_images: CalibrationSource = None,
    names: Sequence[str] | None = None,
) -> Path:
    """Convert an ONNX export, a ``.pth`` checkpoint or a zoo model's weights (``yolox-s``) into a
    yoloxkit checkpoint (atomic write).

    The model comes from ``model_name``, else the zoo name, else the name stored in or guessed from
    ``source``. Class names: ``names``, else those stored in ``source``, else COCO names for 80 classes.
    """
    weights = resolve_weights_source(model_name, source)
    source, model_name = weights.path, model_name or weights.model_name
    model, stored_names, name = build_model_with_weights(model_name, source, calib_images=calib_images)
    num_classes = model.head.num_classes
    if names is not None:
        names = list(names)
        if len(names) != num_classes:
            raise WeightsError(f"{len(names)} class names given but {source} has {num_classes} classes")
    else:
        names = stored_names or _default_names(num_classes, source)
    return save_checkpoint(destination, model, names, name)
