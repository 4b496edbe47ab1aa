"""The one registry of file formats: how a file is recognised (its suffix, or its content), how
it is read (:mod:`.contents`), which inference backend runs it as it is, and which writer in
:mod:`yoloxkit.export` makes it.

``weights/`` opens files through it (:func:`format_of`), ``infer/`` picks the default backend
from it, ``export/`` takes its formats, suffixes and writers from it. Adding an export format is
a writer module in ``export/`` and one :class:`FileFormat` entry here (with a reader beside it
if none fits); a format that needs a runtime of its own also needs a backend in ``infer/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from torch import nn

from .calibration import CalibrationSource
from .contents import (
    WeightsInfo, read_checkpoint_file, read_mnn_file, read_ncnn_file, read_onnx_file, read_openvino_file,
    read_tflite_file, read_torchscript_file,
)
from .exported import is_torchscript_archive

__all__ = [
    "Contents", "FileFormat", "export_format_names", "find_format", "format_of", "known_suffixes", "register_format",
]


class Contents(Protocol):
    """What a format's reader returns (:mod:`.contents`)."""

    path: Path

    def describe(self, identify: bool = True) -> WeightsInfo: ...

    def load_into(self, model: nn.Module, calib_images: CalibrationSource = None) -> list[str] | None: ...

    def state_dict(self, model_name: str | None = None) -> tuple[dict[str, torch.Tensor], list[str] | None]: ...


@dataclass(frozen=True)
class FileFormat:
    """One file format: how to recognise, read, run and write it."""

    name: str  # "checkpoint", "onnx", "openvino", "torchscript", "ncnn", "mnn", "tflite"
    label: str  # the file in words, for messages: "an OpenVINO IR"
    read: Callable[[Path], Contents]  # the reader; raises WeightsError naming the file
    suffixes: tuple[str, ...] = ()  # recognised by name (lower case, with the dot)
    sniff: Callable[[Path], bool] | None = None  # recognised by content (an existing file)
    backend: str = "torch"  # the inference backend that runs the file
    holds_torch_weights: bool = False  # loads into a PyTorch model (else it runs only in its runtime)
    runs_as_is: bool = True  # an export run by its backend as it is (a checkpoint builds a model first)
    output_suffix: str = ""  # the suffix of the files the writer makes
    own_folder: bool = False  # written into a folder of its own (OpenVINO: ``.xml`` and ``.bin``)
    edge: bool = False  # an edge runtime's format (ncnn, MNN, LiteRT): static batch 1, metadata beside it
    writer: str | None = None  # ``module:function`` under ``yoloxkit.export``; None: not an export

    def output_path(self, stem: str) -> Path:
        """Where the writer puts ``stem``: ``stem.onnx``, ``stem_openvino/stem.xml`` ..."""
        if self.own_folder:
            return Path(f"{stem}_{self.name}") / f"{stem}{self.output_suffix}"
        return Path(stem + self.output_suffix)


_FORMATS: dict[str, FileFormat] = {}
#: the format of a file that nothing else claims
FALLBACK = "checkpoint"


def register_format(fmt: FileFormat) -> None:
    """Add (or replace) a format; the order of registration is the order of the export choices."""
    _FORMATS[fmt.name] = fmt


def find_format(name: str) -> FileFormat | None:
    """The format called ``name`` (any case), or None."""
    return _FORMATS.get(str(name).strip().lower())


def export_format_names() -> tuple[str, ...]:
    """The formats ``export`` writes, in registration order (``onnx``, ``torchscript``, ``openvino``)."""
    return tuple(name for name, fmt in _FORMATS.items() if fmt.writer is not None)


def known_suffixes() -> tuple[str, ...]:
    """The suffixes the registry recognises files by (``.onnx``, ``.xml``, ``.param``, ...), and
    ``.pth``/``.torchscript`` (a checkpoint's and a TorchScript export's usual names, recognised by
    content)."""
    suffixes = [s for fmt in _FORMATS.values() for s in fmt.suffixes]
    suffixes += [fmt.output_suffix for fmt in _FORMATS.values() if fmt.output_suffix]
    return tuple(dict.fromkeys([".pth", *suffixes]))


def format_of(path: str | os.PathLike) -> FileFormat:
    """The format of ``path``: the one claiming its suffix, else the first whose sniffer
    recognises the file's content (an existing file), else a checkpoint."""
    path = Path(path)
    suffix = path.suffix.lower()
    for fmt in _FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    if path.is_file():
        for fmt in _FORMATS.values():
            if fmt.sniff is not None and fmt.sniff(path):
                return fmt
    return _FORMATS[FALLBACK]


register_format(FileFormat(
    "onnx", "an ONNX export", read_onnx_file, suffixes=(".onnx",), backend="onnxruntime",
    holds_torch_weights=True, output_suffix=".onnx", writer="onnx:export_onnx",
))
register_format(FileFormat(
    "torchscript", "a TorchScript export", read_torchscript_file, sniff=is_torchscript_archive,
    output_suffix=".torchscript", writer="torchscript:export_torchscript",
))
register_format(FileFormat(
    "openvino", "an OpenVINO IR", read_openvino_file, suffixes=(".xml",), backend="openvino",
    output_suffix=".xml", own_folder=True, writer="openvino:export_openvino",
))
# The edge runtimes (docs/deploy.md): each file with its metadata in a JSON file beside it (.sidecar).
register_format(FileFormat(
    "ncnn", "an ncnn model", read_ncnn_file, suffixes=(".param",), backend="ncnn",
    output_suffix=".param", own_folder=True, edge=True, writer="ncnn:export_ncnn",
))
register_format(FileFormat(
    "mnn", "an MNN model", read_mnn_file, suffixes=(".mnn",), backend="mnn",
    output_suffix=".mnn", own_folder=True, edge=True, writer="mnn:export_mnn",
))
register_format(FileFormat(
    "tflite", "a LiteRT (.tflite) model", read_tflite_file, suffixes=(".tflite",), backend="litert",
    output_suffix=".tflite", own_folder=True, edge=True, writer="tflite:export_tflite",
))
register_format(FileFormat(
    "checkpoint", "a checkpoint", read_checkpoint_file, holds_torch_weights=True,
    runs_as_is=False,
))
