"""Checkpoint files: reading (``weights_only=True``), atomic writing, and strict loading with
errors that say which model a file fits.

Format (a superset of the official one)::

    {"model": state_dict, "names": [class names...], "model_name": "yolox-nano",
     "input_size": [h, w], ...}

``input_size`` is the size the model was trained at (training checkpoints store it); commands
run at it unless told otherwise. A file that cannot be read is one :class:`WeightsError` line
that names it and says what it is not; unpickling is never retried without ``weights_only``.

Official checkpoints carry only ``"model"`` (plus optimizer/epoch fields that are ignored).
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsError, WeightsMismatchError
from ..io import atomic_torch_save
from ..models.head import is_pss_key
from .exported import is_torchscript_archive
from .identify import mismatch_hint

__all__ = ["read_checkpoint", "save_checkpoint", "load_state_dict_checked", "stored_input_size"]

#: suffixes of PyTorch checkpoint files (others are named as "not a checkpoint or export")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt", ".pkl")

logger = logging.getLogger("yoloxkit")


def _unreadable(path: Path, exc: Exception) -> WeightsError:
    """The one-line error for a file ``torch.load(weights_only=True)`` rejects (``exc``).

    PyTorch's own text suggests retrying with ``weights_only=False``, which would run whatever
    code the file holds: that text is never shown.
    """
    text = str(exc)
    blocked = re.search(r"GLOBAL ([\w.]+)", text)
    if blocked:
        return WeightsError(
            f"{path} is not a safe PyTorch checkpoint: it holds the Python object {blocked.group(1)},"
            " which is refused (only tensors and plain values are loaded)"
        )
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES and not zipfile.is_zipfile(path):
        return WeightsError(
            f"{path} is not a YOLOX checkpoint or export (expected a .pth checkpoint, or an .onnx,"
            " OpenVINO .xml or TorchScript file)"
        )
    if zipfile.is_zipfile(path) or text.startswith("PytorchStreamReader"):
        return WeightsError(f"{path} is not a readable PyTorch checkpoint (damaged or truncated archive)")
    return WeightsError(f"{path} is not a readable PyTorch checkpoint (not a PyTorch zip archive or pickle)")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True``; return a dict with a ``"model"`` key.

    An empty, damaged or unsafe file raises :class:`WeightsError` (one line naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path} is not a PyTorch checkpoint (empty file)")
    if is_torchscript_archive(path):
        raise WeightsError(f"{path} is a TorchScript export, not a PyTorch checkpoint")
    if path.suffix.lower() == ".xml":
        raise WeightsError(f"{path} is an OpenVINO IR, not a PyTorch checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and unpickler errors have no common base
        raise _unreadable(path, exc) from None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model": data}  # a bare state dict
    raise WeightsError(f"{path} is not a YOLOX checkpoint (expected a dict with a 'model' state dict)")


def stored_input_size(ckpt: dict[str, Any], path: str | os.PathLike) -> tuple[int, int] | None:
    """The ``input_size`` a checkpoint stores as ``(h, w)`` (an int means a square), or None."""
    value = ckpt.get("input_size")
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise WeightsError(f"{path}: its 'input_size' is not [height, width] (got {value!r:.40})")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    names: list[str] | tuple[str, ...] | None = None,
    model_name: str | None = None,
    input_size: int | tuple[int, int] | list[int] | None = None,
    **extra: Any,
) -> Path:
    """Write ``{"model": state_dict, "names": ..., "model_name": ..., "input_size": [h, w]}`` atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {"model": state, **extra}
    if names is not None:
        payload["names"] = list(names)
    if model_name is not None:
        payload["model_name"] = model_name
    if input_size is not None:
        payload["input_size"] = list(stored_input_size({"input_size": input_size}, path) or ())
    return atomic_torch_save(payload, path)


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with one-line errors that say which model the file fits.

    The one exception: weights of a base detector load into its end-to-end variant, whose PSS
    branch then keeps its fresh initialisation (logged as a warning)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    fresh = [k for k in missing if is_pss_key(k)]
    if fresh and len(fresh) == len(missing):
        logger.warning(
            "%s has no PSS branch (it is a base detector's weights): the end-to-end branch starts fresh"
            " and needs training (yoloxkit train --freeze-detector)", source
        )
        state = {**state, **{k: own[k] for k in fresh}}
        missing = []
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        detail = []
        if mismatched:
            k = mismatched[0]
            detail.append(
                f"{len(mismatched)} tensors have other shapes (e.g. {k}: file {tuple(state[k].shape)}"
                f" vs model {tuple(own[k].shape)})"
            )
        if missing:
            detail.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise WeightsMismatchError(
            f"{source} does not fit this model: {'; '.join(detail)}; {mismatch_hint(state, model)}"
        )
    model.load_state_dict(state, strict=True)
