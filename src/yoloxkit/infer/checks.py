"""Validation of the detector's settings, each failure a one-line :class:`InferenceError`."""

from __future__ import annotations

from typing import Sequence

from ..errors import InferenceError
from ..imaging import to_size

__all__ = ["threshold", "input_size"]


def threshold(value: float, argument: str) -> float:
    """``value`` as a float in ``[0, 1]`` (``argument`` names it in the error)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InferenceError(f"{argument} must be a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InferenceError(f"{argument} must be between 0 and 1, got {value}")
    return value


def input_size(size: int | Sequence[int], argument: str = "size") -> tuple[int, int]:
    """A network input size (an int or ``(h, w)``, multiples of 32) as ``(h, w)``."""
    try:
        return to_size(size)
    except (ValueError, TypeError) as exc:
        raise InferenceError(f"invalid {argument}: {exc}") from None
