"""``yoloxkit`` command line: a thin layer over the Python API.

Each command lives in its own module exposing ``register(subparsers)``; the parser it
adds sets ``func`` to a callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from ..errors import YoloxkitError

# Modules under yoloxkit.cli that provide commands, in --help order.
COMMAND_MODULES = (
    "predict",
    "evaluate",
    "train",
    "export",
    "convert",
    "data",
    "benchmark",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="yoloxkit", description="YOLOX object detection: predict, evaluate, train, export, serve."
    )
    parser.add_argument("--version", action="version", version=f"yoloxkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        qualified = f"{__name__}.{name}"
        if importlib.util.find_spec(qualified) is None:
            continue
        importlib.import_module(qualified).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``yoloxkit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except YoloxkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
