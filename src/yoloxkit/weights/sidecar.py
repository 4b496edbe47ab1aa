"""The metadata of the edge formats (ncnn, MNN, LiteRT), kept in a JSON file beside the model.

Their files have no place for yoloxkit's string metadata that their Python runtimes read back
(ONNX has ``metadata_props``, OpenVINO its ``rt_info``, TorchScript an extra file), so the export
writes the same entries (:func:`~.exported.export_metadata`, plus ``format`` and ``precision``)
to ``<model file name>.json``: ``yolox-nano.param.json``, ``yolox-nano.mnn.json``,
``yolox-nano.tflite.json``. The export puts both in a folder of their own so they travel together.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from ..errors import WeightsError
from .exported import ExportInfo, export_info_from_metadata

__all__ = ["sidecar_path", "write_sidecar", "read_sidecar", "sidecar_export_info"]

_FORMAT_LABELS = {"ncnn": "an ncnn model", "mnn": "an MNN model", "tflite": "a LiteRT (.tflite) model"}


def sidecar_path(model_file: str | os.PathLike) -> Path:
    """``yolox-nano.mnn`` -> ``yolox-nano.mnn.json``."""
    model_file = Path(model_file)
    return model_file.with_name(model_file.name + ".json")


def write_sidecar(model_file: str | os.PathLike, entries: dict[str, str]) -> Path:
    """Write ``entries`` (string to string) beside ``model_file``; the sidecar's path. Not atomic:
    exports write it into their staging folder and move it into place with the model."""
    path = sidecar_path(model_file)
    path.write_text(json.dumps({str(k): str(v) for k, v in entries.items()}, indent=1) + "\n", encoding="utf-8")
    return path


def read_sidecar(model_file: str | os.PathLike, kind: str) -> dict[str, str]:
    """The entries of ``model_file``'s sidecar; :class:`WeightsError` naming the file when it is
    missing (the model's input size and outputs are then unknown) or malformed."""
    path = sidecar_path(model_file)
    label = _FORMAT_LABELS.get(kind, f"a {kind} model")
    if not path.is_file():
        raise WeightsError(
            f"{model_file} is {label} without its yoloxkit metadata {path.name} beside it (its input size and"
            f" outputs are unknown); keep the folder `yoloxkit export --format {kind}` wrote together"
        )
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        raise WeightsError(f"{path} is not readable yoloxkit metadata (JSON)") from None
    if not isinstance(entries, dict) or "interface" not in entries:
        raise WeightsError(f"{path} is not yoloxkit metadata: it has no 'interface' entry")
    if entries.get("format", kind) != kind:
        raise WeightsError(f"{path} describes a {entries['format']} file, not {label}")
    return {str(k): str(v) for k, v in entries.items()}


def sidecar_export_info(path: str | os.PathLike, kind: str) -> ExportInfo:
    """The :class:`ExportInfo` of an edge-format model file from its sidecar. These files have a
    static input, so the size they were exported at is the only one they run at."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    entries = read_sidecar(path, kind)
    info = export_info_from_metadata(path, kind, entries, interface="raw", static_size=None, num_classes=None)
    if info.input_size is None:
        raise WeightsError(f"{sidecar_path(path)} does not give the input size ('input_size')")
    return replace(info, fixed_size=info.input_size)
