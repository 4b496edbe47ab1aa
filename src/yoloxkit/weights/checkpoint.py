"""Checkpoint files: reading (``weights_only=True``), atomic writing, and strict loading with
errors that say which model a file fits.

Format (a superset of the official one)::

    {"model": state_dict, "names": [class names...], "model_name": "yolox-nano", ...}

Official checkpoints carry only ``"model"`` (plus optimizer/epoch fields that are ignored).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsError, WeightsMismatchError
from ..io import atomic_torch_save
from .identify import mismatch_hint

__all__ = ["read_checkpoint", "save_checkpoint", "load_state_dict_checked"]


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True``; return a dict with a ``"model"`` key."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and unpickler errors have no common base
        raise WeightsError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model": data}  # a bare state dict
    raise WeightsError(f"{path} is not a YOLOX checkpoint (expected a dict with a 'model' state dict)")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    names: list[str] | tuple[str, ...] | None = None,
    model_name: str | None = None,
    **extra: Any,
) -> Path:
    """Write ``{"model": state_dict, "names": ..., "model_name": ...}`` atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {"model": state, **extra}
    if names is not None:
        payload["names"] = list(names)
    if model_name is not None:
        payload["model_name"] = model_name
    return atomic_torch_save(payload, path)


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with one-line errors that say which model the file fits."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
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
