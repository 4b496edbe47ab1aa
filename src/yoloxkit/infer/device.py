"""Checking the device a backend runs on."""

from __future__ import annotations

import torch

from ..errors import InferenceError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``cpu``/``cuda``/``cuda:N`` as a torch device; one-line error when CUDA is unavailable."""
    try:
        resolved = torch.device(device if device is not None else "cpu")
    except (RuntimeError, TypeError):
        raise InferenceError(f"invalid device {device!r}; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InferenceError(f"device {device!r} requested but CUDA is not available on this machine; use cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InferenceError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif resolved.type != "cpu":
        raise InferenceError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    return resolved
