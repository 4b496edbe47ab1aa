"""Argument types shared by the commands: each rejects a bad value with a one-line message."""

from __future__ import annotations

import argparse

from ..infer.defaults import DEFAULT_SLICE_OVERLAP

__all__ = [
    "WEIGHTS_HELP", "positive_int", "unit_float", "positive_float", "non_negative_float", "port",
    "slice_size", "open_unit_float", "add_slice_options", "slice_options",
]

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


def open_unit_float(text: str) -> float:
    """A number strictly between 0 and 1 (the slice overlap)."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (both excluded), got {text}")
    return value


def slice_size(text: str) -> tuple[int, int]:
    """``H`` or ``HxW`` pixels, at least the model's largest stride."""
    from ..errors import InferenceError
    from ..infer.slicing import parse_slice

    try:
        return parse_slice(text)
    except InferenceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_slice_options(parser: argparse.ArgumentParser) -> None:
    """``--slice``, ``--slice-overlap`` and ``--slice-full`` (sliced inference for small objects)."""
    group = parser.add_argument_group("sliced inference (small objects in large images)")
    group.add_argument("--slice", type=slice_size, metavar="H[xW]",
                       help="cut each image into overlapping tiles of H x W pixels (height x width; H alone: "
                            "square), run them at the input size and merge their boxes")
    group.add_argument("--slice-overlap", type=open_unit_float, metavar="R",
                       help="fraction of a tile shared with its neighbour, in (0, 1)"
                       f" (default {DEFAULT_SLICE_OVERLAP})")
    group.add_argument("--slice-full", action="store_true",
                       help="also run the whole image, for objects larger than a tile")


def slice_options(args: argparse.Namespace) -> dict:
    """The Detector keywords of the slice options; --slice-overlap/--slice-full need --slice."""
    from ..errors import YoloxkitError

    if args.slice is None:
        if args.slice_overlap is not None or args.slice_full:
            given = "--slice-overlap" if args.slice_overlap is not None else "--slice-full"
            raise YoloxkitError(f"{given} needs --slice H[xW]")
        return {}
    overlap = DEFAULT_SLICE_OVERLAP if args.slice_overlap is None else args.slice_overlap
    return {"slice_size": args.slice, "slice_overlap": overlap, "slice_full": args.slice_full}
