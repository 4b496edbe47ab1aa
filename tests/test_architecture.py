"""The package's structure, as docs/ARCHITECTURE.md describes it, checked from the source.

- Every first-party import runs down the layers of ``LAYERS`` (a package imports only packages
  of lower layers, or its own modules), so data flows one way and there are no import circles.
- First-party imports sit at module level: a function-level import hides a dependency (and
  usually a circle). ``cli/`` may import lazily, to keep ``--help`` fast; so may the modules in
  ``LAZY_ALLOWED``, whose targets need an optional dependency.
- No module is longer than ``MAX_LINES``, no function longer than ``MAX_FUNCTION_LINES``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "yoloxkit"
MAX_LINES = 350
#: no function or method in src/ is longer than this (def line to last line)
MAX_FUNCTION_LINES = 60

# Lowest first. A unit is a top-level module or subpackage of yoloxkit.
LAYERS: list[set[str]] = [
    {"errors", "_version"},
    {"io", "child_job", "coco_names", "deprecation", "native_output", "optional", "ort_session", "packaged", "text"},
    {"imaging", "names"},
    {"models"},
    {"assign"},
    {"losses"},
    {"weights", "data", "trainable"},
    {"infer", "synth"},
    {"evaluate", "export", "benchmarking", "tracking"},
    {"engine", "serve", "quantize"},
    {"cli"},
    {"__main__", "__init__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

# (importing module, imported module): lazy first-party imports whose target needs an optional
# dependency that `import yoloxkit...` must not require, or is too heavy for the checks before a run.
LAZY_ALLOWED = {
    ("yoloxkit.serve", "yoloxkit.serve.app"),  # FastAPI (the `serve` extra)
    ("yoloxkit.engine", "yoloxkit.engine.trainer"),  # the loop (torchvision, matplotlib) loads on first use
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Absolute first-party module names an import statement loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "yoloxkit"]
    if node.level == 0:
        base = node.module or ""
    else:
        package = module if _is_package(module) else module.rsplit(".", 1)[0]
        parts = package.split(".")
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    if base.split(".")[0] != "yoloxkit":
        return []
    targets = []
    for alias in node.names:  # `from . import x` may name a submodule
        candidate = f"{base}.{alias.name}"
        targets.append(candidate if candidate in MODULES else base)
    return targets


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(module: str) -> list[tuple[str, bool, int]]:
    """(target, at module level, line) for every first-party import of ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top_level = set()
    for node in tree.body:  # module level, including `if`/`try` blocks at module level
        for inner in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            top_level.add(id(inner))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in dict.fromkeys(_resolve(module, node)):
                found.append((target, id(node) in top_level, node.lineno))
    return found


def test_every_unit_has_a_layer():
    assert {_unit(m) for m in MODULES} <= set(RANK), {_unit(m) for m in MODULES} - set(RANK)


def test_imports_run_down_the_layers():
    wrong = []
    for module in MODULES:
        for target, _, line in _imports(module):
            own, other = _unit(module), _unit(target)
            if own != other and RANK[other] >= RANK[own]:
                wrong.append(f"{module}:{line} imports {target} ({own} is not above {other})")
    assert not wrong, "\n".join(wrong)


def test_no_function_level_first_party_imports():
    wrong = []
    for module in MODULES:
        if _unit(module) == "cli":
            continue
        for target, top, line in _imports(module):
            if not top and (module, target) not in LAZY_ALLOWED:
                wrong.append(f"{module}:{line} imports {target} inside a function")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    graph = {m: {t for t, top, _ in _imports(m) if top and t != m} for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in MODULES:
        if module not in state and (cycle := visit(module)):
            pytest.fail("import circle: " + " -> ".join(cycle))


def test_modules_are_small():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_functions_are_short():
    import ast

    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, long


def test_architecture_doc_names_every_package():
    doc = (PACKAGE.parents[1] / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    packages = sorted({_unit(m) for m in MODULES if _is_package(m) and m != "yoloxkit"})
    missing = [p for p in packages if f"{p}/" not in doc]
    assert not missing, f"docs/ARCHITECTURE.md does not describe {missing}"


def test_import_and_help_stay_light():
    """`import yoloxkit` and `yoloxkit --help` do not pay for libraries only some commands use
    (torchvision alone takes about a second to import)."""
    import subprocess
    import sys

    heavy = ("torchvision", "onnxslim", "matplotlib", "fastapi", "openvino", "onnxruntime", "scipy", "mlflow", "wandb")
    code = (
        "import sys, contextlib, io\n"
        "import yoloxkit\n"
        "from yoloxkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
