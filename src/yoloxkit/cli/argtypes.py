"""Argument types shared by the commands: each rejects a bad value with a one-line message."""

from __future__ import annotations

import argparse

__all__ = ["WEIGHTS_HELP", "positive_int", "unit_float", "positive_float", "non_negative_float", "port"]

#: the --weights help of every command that runs a model
WEIGHTS_HELP = (
    "weights path or zoo name (yolox-s: bundled for nano, the official download otherwise);"
    " a path is a .pth checkpoint (official or yoloxkit) or an .onnx export"
)


def _number(text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def unit_float(text: str) -> float:
    """A number in [0, 1] (thresholds)."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0."""
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: any free port)."""
    value = _number(text, int)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {value}")
    return value
