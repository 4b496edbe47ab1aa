"""Training checkpoints: our inference checkpoint format plus the state needed to resume.

``{"model": EMA (or raw) weights, "names", "model_name", "train_state": {...}}`` — the file
loads with ``torch.load(weights_only=True)``: every RNG state is stored as a tensor or plain
Python lists/ints.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from ..io import atomic_torch_save
from ..weights import read_checkpoint

__all__ = ["capture_rng_state", "restore_rng_state", "save_training_checkpoint", "read_training_state"]


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states as weights_only-safe values."""
    py_version, py_internal, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
        "numpy": {
            "kind": str(np_kind),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"]), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, int(npy["pos"]), int(npy["has_gauss"]), float(npy["gauss"])))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def _optimizer_state_cpu(state: dict) -> dict:
    def move(value):
        if isinstance(value, torch.Tensor):
            return value.detach().cpu()
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return move(state)


def save_training_checkpoint(
    path: str | os.PathLike,
    *,
    weights: dict[str, torch.Tensor],
    names: list[str],
    model_name: str,
    train_state: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Write a checkpoint atomically. ``weights`` becomes ``"model"`` (what inference loads);
    ``train_state`` (raw model, EMA, optimizer, schedule, counters, RNG) enables ``--resume``."""
    payload: dict[str, Any] = {"model": _cpu_state(weights), "names": list(names), "model_name": model_name, **extra}
    if train_state is not None:
        payload["train_state"] = _optimizer_state_cpu(train_state)
    return atomic_torch_save(payload, path)


def read_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_training_checkpoint` and return it whole;
    raise :class:`WeightsError` if it holds no training state."""
    ckpt = read_checkpoint(path)
    if "train_state" not in ckpt:
        raise WeightsError(f"{path} holds no training state to resume from (it is an inference checkpoint)")
    return ckpt
