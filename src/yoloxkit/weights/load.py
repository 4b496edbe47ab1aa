"""The long-standing ways to load weights, each a thin use of :func:`~.opened.open_weights`
(or of :meth:`WeightsFile.at <.opened.WeightsFile.at>` for a plain path): ``load_weights`` (the
public ``yoloxkit.load_weights``), ``describe_weights``, ``load_model``,
``build_model_with_weights`` and ``convert_weights``; ``weights_format`` and ``is_onnx_file``
answer from the format registry (:mod:`.formats`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Sequence

from torch import nn

from ..deprecation import warn_deprecated
from ..errors import DatasetError, WeightsError
from ..names import read_names_file as names_file
from .calibration import CalibrationSource
from .checkpoint import save_checkpoint
from .contents import WeightsInfo, default_names
from .formats import format_of
from .opened import LoadedModel, WeightsFile, open_weights
from .source import resolve_weights_source

__all__ = [
    "build_model_with_weights",
    "convert_weights",
    "describe_weights",
    "is_onnx_file",
    "load_model",
    "load_weights",
    "read_names_file",
    "resolve_weights",
    "weights_format",
]

WeightsFormat = Literal["checkpoint", "onnx", "openvino", "torchscript"]


def is_onnx_file(path: str | os.PathLike) -> bool:
    """True for ``.onnx`` files (official exports, imported by :mod:`.unfold`)."""
    return format_of(path).name == "onnx"


def weights_format(path: str | os.PathLike) -> WeightsFormat:
    """Which kind of file ``path`` is: ``onnx`` (by suffix), ``openvino`` (an ``.xml`` IR),
    ``torchscript`` (a ``torch.jit.save`` archive, whatever its suffix) or ``checkpoint``
    (anything else, read as a ``.pth``); :func:`~.formats.format_of`'s name."""
    return format_of(path).name  # type: ignore[return-value]


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
    return WeightsFile.at(path).load_into(model, calib_images)


def describe_weights(path: str | os.PathLike) -> WeightsInfo:
    """Model name, class count, names and input size of a weights file (a checkpoint or any
    file ``yoloxkit export`` writes), so the right model or backend can be built for it."""
    return WeightsFile.at(path).describe()


def load_model(
    model_name: str | None,
    weights: str | os.PathLike | None = None,
    *,
    calib_images: CalibrationSource = None,
) -> LoadedModel:
    """Build the model a weights file belongs to and load it, keeping what the file says:
    ``open_weights(weights, model_name).build(calib_images)``.

    ``weights`` is a file or a zoo name; with ``weights=None`` the default weights of
    ``model_name`` are used. ``model_name`` (if given, else the zoo name in ``weights``) wins over
    the name stored in or guessed from the file; the class count always comes from the file.
    OpenVINO and TorchScript exports hold no PyTorch weights (:class:`WeightsError`).
    """
    return open_weights(weights, model_name).build(calib_images)


def build_model_with_weights(
    model_name: str | None,
    weights: str | os.PathLike | None = None,
    *,
    calib_images: CalibrationSource = None,
) -> tuple[nn.Module, list[str] | None, str]:
    """:func:`load_model` as ``(model, names, model_name)``; the model is in eval mode."""
    loaded = load_model(model_name, weights, calib_images=calib_images)
    return loaded.model, loaded.names, loaded.model_name


def _deprecated(old: str, new: str) -> None:
    warn_deprecated(old, f"{old} is deprecated; use {new}", stacklevel=4)


def resolve_weights(model_name: str | None, weights: str | os.PathLike | None = None) -> Path:
    """Deprecated: ``open_weights(weights, model_name).path``."""
    _deprecated("yoloxkit.weights.resolve_weights", "open_weights(weights, model).path")
    return resolve_weights_source(model_name, weights).path


def load_state(path: str | os.PathLike, model_name: str | None = None):
    """Deprecated: ``open_weights(path, model_name).state_dict()`` (the state dict and class names)."""
    _deprecated("yoloxkit.weights.load_state", "open_weights(weights, model).state_dict()")
    return open_weights(path, model_name).state_dict()


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
    opened = open_weights(source, model_name)
    loaded = opened.build(calib_images)
    num_classes = loaded.model.head.num_classes
    if names is not None:
        names = list(names)
        if len(names) != num_classes:
            raise WeightsError(f"{len(names)} class names given but {opened.path} has {num_classes} classes")
    else:
        names = loaded.names or default_names(num_classes, opened.path)
    return save_checkpoint(destination, loaded.model, names, loaded.model_name)
