"""The figures of docs/ARCHITECTURE.md, counted from the source and from one tiny training run.

    python scripts/architecture_counts.py            # static counts only
    python scripts/architecture_counts.py --run      # also the resolve calls of one training run

Static: functions over 60 lines in src/ and the largest modules. --run: how often a run of
`yoloxkit train` (yolox-nano at 64 px, 1 epoch, 1 iteration, on ../shared/data/coco-mini) calls
each resolve step (`TrainConfig.resolved`, `resolve_run_dir`, `resolve_weights_source`), counted
with a profile hook by code object, so it sees every call whatever name a module imported it under.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "yoloxkit"
RESOLVE_STEPS = ("resolved", "resolve_run_dir", "resolve_weights_source")


def long_functions(limit: int = 60) -> list[tuple[int, str, str]]:
    """(lines, file, name) of every function in src/ longer than ``limit`` lines."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append((lines, str(path.relative_to(ROOT)), node.name))
    return sorted(found, reverse=True)


def largest_modules(count: int = 5) -> list[tuple[int, str]]:
    sizes = [(len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(ROOT))) for p in SRC.rglob("*.py")]
    return sorted(sizes, reverse=True)[:count]


def resolve_calls(data: str) -> Counter:
    """Calls of each resolve step during one tiny CLI training run."""
    from yoloxkit.cli import main

    calls: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_name in RESOLVE_STEPS and "yoloxkit" in frame.f_code.co_filename:
            calls[frame.f_code.co_name] += 1

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", "--data", data, "--model", "yolox-nano", "--size", "64", "--epochs", "1",
                "--batch-size", "2", "--workers", "0", "--max-iters-per-epoch", "1", "--no-progress",
                "--no-plots", "--out", str(Path(tmp) / "run")]
        sys.setprofile(profile)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the run's own log lines
                main(argv)
        finally:
            sys.setprofile(None)
    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="also count the resolve calls of one training run")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "coco-mini"))
    args = parser.parse_args()
    functions = long_functions()
    print(f"functions over 60 lines in src/: {len(functions)}")
    for lines, path, name in functions:
        print(f"  {lines:4d}  {path}:{name}")
    print("largest modules:")
    for lines, path in largest_modules():
        print(f"  {lines:4d}  {path}")
    if args.run:
        calls = resolve_calls(args.data)
        print("resolve calls in one training run:")
        for name in RESOLVE_STEPS:
            print(f"  {name}: {calls[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
