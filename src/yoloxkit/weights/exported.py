"""What an exported network file says about itself: the metadata ``yoloxkit export`` writes and
reading it back from ONNX, OpenVINO IR and TorchScript files.

Every export carries the same string-to-string metadata (:func:`export_metadata`): the model and
class names, the class count, the input size it was made at, whether the input size is dynamic,
whether the network is end-to-end (NMS-free, ``end_to_end``: its scores are final without NMS)
and its output interface (``raw``: the official undecoded ``[B, A, 5 + C]``; ``decoded``: boxes
decoded in the graph; ``nms``: final detections ``num_dets, boxes, scores, class_ids`` with the
thresholds fixed at export; ``topk``: the same four outputs from best class, score threshold and
TopK, without NMS, for end-to-end models; ``topk`` holds K and ``topk_conf`` the threshold). It
is stored where each runtime keeps metadata (``export --int8`` adds ``quantization``, a JSON
description of its recipe): the ONNX ``metadata_props`` (which OpenVINO's ONNX
reader carries into the IR's ``rt_info`` under ``framework``) and a TorchScript extra file, ``extra/yoloxkit.json``.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence

from ..errors import WeightsError
from ..optional import import_openvino
from .onnx_reader import OnnxWeights

__all__ = [
    "INTERFACES",
    "NMS_OUTPUTS",
    "TORCHSCRIPT_METADATA",
    "ExportInfo",
    "export_metadata",
    "export_info_from_metadata",
    "is_torchscript_archive",
    "onnx_export_info",
    "openvino_export_info",
    "torchscript_export_info",
]

ExportKind = Literal["onnx", "openvino", "torchscript", "ncnn", "mnn", "tflite"]
Interface = Literal["raw", "decoded", "nms", "topk"]
#: the output interfaces (see the module docstring); ``nms`` and ``topk`` give final detections
INTERFACES: tuple[str, ...] = ("raw", "decoded", "nms", "topk")
#: the output names of an ``--nms`` (or ``--topk``) export, in order
NMS_OUTPUTS = ("num_dets", "boxes", "scores", "class_ids")
#: the extra file of a TorchScript archive that holds the metadata
TORCHSCRIPT_METADATA = "yoloxkit.json"


@dataclass(frozen=True)
class ExportInfo:
    """An exported network file: its kind, output interface and what its metadata says."""

    path: Path
    kind: ExportKind
    interface: Interface
    model_name: str | None = None
    names: list[str] | None = None
    num_classes: int | None = None
    input_size: tuple[int, int] | None = None  # the size it was exported at (or its static input)
    fixed_size: tuple[int, int] | None = None  # the only size it runs at; None if any size works
    nms_conf: float | None = None  # ``nms`` exports: the thresholds fixed in the graph
    nms_iou: float | None = None
    max_dets: int | None = None
    end_to_end: bool = False  # an end-to-end (NMS-free) network: its scores are final without NMS
    topk: int | None = None  # ``topk`` exports: K, the detections kept per image
    topk_conf: float | None = None  # ``topk`` exports: the score threshold fixed in the graph
    precision: str = "float32"  # "int8" for ``export --int8`` files; "float16" for ``--half`` edge exports


def export_metadata(
    *,
    model_name: str | None,
    names: Sequence[str] | None,
    num_classes: int | None,
    input_size: tuple[int, int],
    dynamic: bool,
    interface: Interface,
    nms_conf: float | None = None,
    nms_iou: float | None = None,
    max_dets: int | None = None,
    end_to_end: bool = False,
    topk: int | None = None,
    topk_conf: float | None = None,
) -> dict[str, str]:
    """The metadata entries an export stores (all values are strings)."""
    entries = {
        "interface": interface,
        "input_size": json.dumps([int(input_size[0]), int(input_size[1])]),
        "dynamic": "1" if dynamic else "0",
        "end_to_end": "1" if end_to_end else "0",
    }
    if model_name is not None:
        entries["model_name"] = model_name
    if names is not None:
        entries["names"] = json.dumps(list(names))
    if num_classes is not None:
        entries["num_classes"] = str(int(num_classes))
    if interface == "nms":
        entries.update(nms_conf=repr(float(nms_conf)), nms_iou=repr(float(nms_iou)), max_dets=str(int(max_dets)))
    if interface == "topk":
        entries.update(topk=str(int(topk)), topk_conf=repr(float(topk_conf)))
    return entries


def _parse(path: Path, metadata: Mapping[str, str], key: str, kind: type):
    if key not in metadata:
        return None
    try:
        value = json.loads(metadata[key]) if kind is list else kind(metadata[key])
    except (ValueError, TypeError):
        raise WeightsError(f"{path}: its {key!r} metadata is malformed ({metadata[key][:40]!r})") from None
    if kind is list and not isinstance(value, list):
        raise WeightsError(f"{path}: its {key!r} metadata is not a list")
    return value


def export_info_from_metadata(
    path: Path,
    kind: ExportKind,
    metadata: Mapping[str, str],
    *,
    interface: Interface,
    static_size: tuple[int, int] | None,
    num_classes: int | None,
) -> ExportInfo:
    """An :class:`ExportInfo` from the metadata, completed by what the graph itself shows."""
    stored = _parse(path, metadata, "interface", str)
    if stored is not None:
        if stored not in INTERFACES:
            raise WeightsError(f"{path}: unknown output interface {stored!r} in its metadata")
        interface = stored
    names = _parse(path, metadata, "names", list)
    count = _parse(path, metadata, "num_classes", int) or num_classes or (len(names) if names else None)
    if names is not None and count is not None and len(names) != count:
        raise WeightsError(f"{path}: its 'names' metadata does not list {count} class names")
    size = _parse(path, metadata, "input_size", list)
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)):
        raise WeightsError(f"{path}: its 'input_size' metadata is not [height, width]")
    input_size = tuple(size) if size is not None else static_size
    fixed = static_size
    if fixed is None and kind == "torchscript" and _parse(path, metadata, "dynamic", int) != 1:
        fixed = input_size  # a trace runs at the size it was traced at
    return ExportInfo(
        path,
        kind,
        interface,
        metadata.get("model_name") or None,
        [str(n) for n in names] if names is not None else None,
        count,
        input_size,
        fixed,
        _parse(path, metadata, "nms_conf", float),
        _parse(path, metadata, "nms_iou", float),
        _parse(path, metadata, "max_dets", int),
        _parse(path, metadata, "end_to_end", int) == 1,
        _parse(path, metadata, "topk", int),
        _parse(path, metadata, "topk_conf", float),
        _precision(path, metadata),
    )


def _precision(path: Path, metadata: Mapping[str, str]) -> str:
    """The ``precision`` entry (the edge formats: ``float32``, ``float16``, ``int8``), else ``int8``
    when the ``quantization`` metadata (``export --int8``) says so, else ``float32``."""
    if metadata.get("precision") in ("float32", "float16", "int8"):
        return str(metadata["precision"])
    if "quantization" not in metadata:
        return "float32"
    try:
        described = json.loads(metadata["quantization"])
    except ValueError:
        raise WeightsError(f"{path}: its 'quantization' metadata is malformed") from None
    return str(described.get("precision", "int8")) if isinstance(described, dict) else "int8"


def onnx_export_info(weights: OnnxWeights) -> ExportInfo:
    """The export description of an ONNX file already read by :func:`~.onnx_reader.read_onnx_weights`."""
    interface: Interface = "nms" if tuple(weights.output_shapes) == NMS_OUTPUTS else "raw"
    return export_info_from_metadata(
        weights.path, "onnx", weights.metadata, interface=interface, static_size=weights.input_hw,
        num_classes=weights.num_classes,
    )


def _is_ir_xml(path: Path) -> bool:
    """Whether ``path`` starts like an OpenVINO IR (its root element is ``<net ...>``)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return re.match(rb"\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<net[\s>]", head, re.DOTALL) is not None


def openvino_export_info(path: str | os.PathLike) -> ExportInfo:
    """The export description of an OpenVINO IR (``.xml``, its weights in the ``.bin`` beside it)."""
    path = Path(path)
    weights = path.with_suffix(".bin")
    if not weights.is_file() and _is_ir_xml(path):  # OpenVINO's own message does not name the .bin
        raise WeightsError(f"OpenVINO model {path} needs its weights file {weights.name} beside it (not found)")
    ov = import_openvino()
    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises its own exception types for bad files
        text = str(exc).strip().splitlines()
        raise WeightsError(f"{path} is not a readable OpenVINO IR ({text[0] if text else type(exc).__name__})") from None
    metadata = {}
    for key in ("interface", "input_size", "dynamic", "model_name", "names", "num_classes", "nms_conf",
                "nms_iou", "max_dets", "end_to_end", "topk", "topk_conf", "quantization"):
        if model.has_rt_info(["framework", key]):
            metadata[key] = model.get_rt_info(["framework", key]).astype(str)
    outputs = tuple(out.get_any_name() for out in model.outputs)
    in_shape = model.inputs[0].get_partial_shape() if len(model.inputs) == 1 else None
    if in_shape is None or in_shape.rank.is_dynamic or in_shape.rank.get_length() != 4:
        raise WeightsError(f"{path} is not a YOLOX export: expected one input [B, 3, H, W]")
    static = None
    if in_shape[2].is_static and in_shape[3].is_static:
        static = (int(in_shape[2].get_length()), int(in_shape[3].get_length()))
    num_classes = None
    if len(outputs) == 1:
        out_shape = model.outputs[0].get_partial_shape()
        if out_shape.rank.is_static and out_shape.rank.get_length() == 3 and out_shape[2].is_static:
            num_classes = int(out_shape[2].get_length()) - 5
    interface: Interface = "nms" if outputs == NMS_OUTPUTS else "raw"
    return export_info_from_metadata(path, "openvino", metadata, interface=interface, static_size=static,
                                     num_classes=num_classes)


def _archive_names(path: Path) -> list[str] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """True for a TorchScript archive (``torch.jit.save``: a zip with ``code/`` and ``constants.pkl``),
    as opposed to a ``torch.save`` checkpoint (a zip without them) or any other file."""
    names = _archive_names(Path(path))
    return bool(names) and any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def torchscript_export_info(path: str | os.PathLike) -> ExportInfo:
    """The export description of a TorchScript file written by ``yoloxkit export``."""
    path = Path(path)
    metadata: dict[str, str] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            entry = next((n for n in archive.namelist() if n.endswith(f"/extra/{TORCHSCRIPT_METADATA}")), None)
            if entry is not None:
                metadata = json.loads(archive.read(entry).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError):
        raise WeightsError(f"{path} is not a readable TorchScript file") from None
    if not isinstance(metadata, dict) or "interface" not in metadata:
        raise WeightsError(
            f"{path} is a TorchScript file without yoloxkit metadata (its outputs and input size are"
            " unknown); export it with `yoloxkit export --format torchscript`"
        )
    return export_info_from_metadata(path, "torchscript", {str(k): str(v) for k, v in metadata.items()},
                                     interface="raw",
                 static_size=None, num_classes=None)
