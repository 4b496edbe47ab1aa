"""``yoloxkit`` command line: a thin layer over the Python API.

Each command lives in its own module exposing ``register(subparsers)``; the parser it
adds sets ``func`` to a callable taking the parsed arguments and returning an exit code.
Every argparse error is one line naming the command, and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import MutableMapping, NoReturn, Sequence

from ..errors import YoloxkitError

__all__ = ["COMMAND_MODULES", "CommandParser", "build_parser", "invoked_as_command", "main", "prefer_passive_openmp"]

# Modules under yoloxkit.cli that provide commands, in --help order.
COMMAND_MODULES = (
    "predict",
    "track",
    "evaluate",
    "train",
    "export",
    "convert",
    "data",
    "synth",
    "benchmark",
    "serve",
)

#: the console script's name (pyproject ``[project.scripts]``)
COMMAND = "yoloxkit"


def invoked_as_command(argv: Sequence[str] | None = None, orig_argv: Sequence[str] | None = None) -> bool:
    """True when this process runs the ``yoloxkit`` command: the console script, or
    ``python -m yoloxkit`` (also what ``torchrun -m yoloxkit`` starts). ``argv`` and ``orig_argv``
    default to ``sys.argv`` and ``sys.orig_argv``.

    A program that imports yoloxkit as a library is none of these.
    """
    argv = list(sys.argv if argv is None else argv)
    orig_argv = list(getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv)
    if argv and Path(argv[0]).name in (COMMAND, f"{COMMAND}.exe", f"{COMMAND}-script.py"):
        return True
    # The interpreter's own options come before the script, -c or -m: look for ``-m yoloxkit``.
    options = iter(orig_argv[1:])
    for option in options:
        if option in ("-W", "-X"):  # options that take a separate value
            next(options, None)
            continue
        if option == "-m" or (option.startswith("-m") and len(option) > 2):
            module = option[2:] or next(options, "")
            return module == COMMAND or module.startswith(f"{COMMAND}.")
        if option == "-c" or option == "-" or not option.startswith("-"):
            return False
    return False


def prefer_passive_openmp(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user set a policy; True if it was set.

    OpenMP's default spinning waits make torch many times slower on a machine whose cores are
    busy with other processes (docs/BENCHMARKS.md, "OpenMP wait policy"). The OpenMP runtime
    reads the variable once, when it is loaded, so this must run before ``import torch``:
    ``yoloxkit/__init__.py`` calls it first when :func:`invoked_as_command`. Library users
    keep their own environment.
    """
    environ = os.environ if environ is None else environ
    if environ.get("OMP_WAIT_POLICY"):
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line naming the command and its ``--help``."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = CommandParser(
        prog=COMMAND, description="YOLOX object detection: predict, evaluate, train, export, serve."
    )
    parser.add_argument("--version", action="version", version=f"yoloxkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name in COMMAND_MODULES:
        qualified = f"{__name__}.{name}"
        if importlib.util.find_spec(qualified) is None:
            continue
        importlib.import_module(qualified).register(subparsers)
    parser.commands = subparsers.choices  # name -> that command's parser
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unknown option is reported by the command it was given to."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        command = getattr(parser, "commands", {}).get(getattr(args, "command", None), parser)
        command.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``yoloxkit`` console script."""
    parser = build_parser()
    args = _parse(parser, argv)
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
