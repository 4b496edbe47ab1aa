"""Fine-tuning yolox-nano from its COCO weights: validation curves and test figures per variant.

Runs ``yoloxkit train`` through the CLI (a subprocess of this tree: ``PYTHONPATH=src``) for every
dataset x variant x seed of the tables below, each into ``RUNS/<dataset>-<variant>-s<seed>``, and
reads the run's ``history.json``: the metric per epoch (VOC data: val mAP50 %, COCO data: COCO AP
%), with epoch 0 (the starting weights) parsed from the run's stdout. Where the dataset has a test
split, ``best.pth`` is then scored on it by ``yoloxkit eval --json-out``: mAP50, mAP50-95 and
per-class AP50. Prints one markdown table per dataset (for docs/BENCHMARKS.md): the metric at
epochs 0..N, the worst drop (min over epochs 1..N minus epoch 0), the best (and its epoch), the
test figures, the training wall time and the summed epoch times. A failed run is reported and
skipped; the exit status is 1 when any failed. Each run's stdout/stderr go to
``OUT/bench_train.{out,err}`` (``tail -f`` them while it runs).

    .venv/bin/python benchmarks/bench_finetune.py [--datasets bccd coco-mini-3cls coco-mini]
        [--variants default no-shift-rule shift-lr-only official-lr fixed-size frozen-trunk stem-trained no-recalibrate-bn trunk-lr-0.1] [--seeds 0 1 2] [--epochs N]
        [--size S] [--max-iters-per-epoch N] [--workers N] [--runs-dir runs/bench_finetune]
        [--json results.json]

Smoke run (minutes): ``--datasets bccd coco-mini --variants default --epochs 1 --size 128
--max-iters-per-epoch 1 --workers 1``. Data paths and ``--runs-dir`` are relative to the repo root.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# ----- variants: name -> extra `yoloxkit train` flags (edit freely) ---------------------------
VARIANTS: dict[str, list[str]] = {
    "default": [],  # the finetune recipe: everything but the stem trains, at 2x the official lr (3x and L1 throughout on a domain shift)
    "no-shift-rule": ["--shifted-lr-scale", "1", "--no-l1-from-start"],  # 2x everywhere, L1 in the tail: before issue 27's third step
    "shift-lr-only": ["--no-l1-from-start"],  # the domain-shift rule without its L1 part
    "official-lr": ["--lr", "{official_lr}", "--no-l1-from-start"],  # 0.01 per 64 images, the default before issue 27's second step
    "fixed-size": ["--no-multiscale"],
    "frozen-trunk": ["--freeze-trunk"],  # the default before issue 27
    "stem-trained": ["--frozen-stages", "0"],  # the trunk as before issue 27's fix: it collapses
    "no-recalibrate-bn": ["--no-recalibrate-bn"],
    "trunk-lr-0.1": ["--trunk-lr-scale", "0.1"],
}

# ----- datasets: data (relative to the repo root), extra flags, epochs, size, batch, test split --
DATASETS: dict[str, dict[str, Any]] = {
    "bccd": {"data": "../shared/data/bccd", "args": ["--train-split", "train", "--val-split", "val"],
             "epochs": 30, "size": 416, "batch_size": 16, "test_split": "test"},
    "coco-mini-3cls": {"data": "../shared/data/coco-mini-3cls", "args": [],
                       "epochs": 10, "size": 320, "batch_size": 8, "test_split": None},  # val is the test
    "coco-mini": {"data": "../shared/data/coco-mini", "args": [],
                  "epochs": 5, "size": 416, "batch_size": 8, "test_split": None},
}

EPOCH0 = re.compile(r"epoch 0 \(starting weights\): (\S+) (-?[\d.]+|nan)")
TAIL_LINES = 8


@dataclass
class RunResult:
    """One training run (and its test evaluation); ``curve[e]`` is the metric after epoch ``e``
    (``curve[0]``: the starting weights), None where the epoch was not evaluated."""

    dataset: str
    variant: str
    seed: int
    out: str
    ok: bool = False
    error: str = ""
    metric: str = ""
    curve: list[float | None] = field(default_factory=list)
    wall_s: float = 0.0
    epochs_s: float = 0.0
    test: dict[str, Any] | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, help="override every dataset's epochs (quick runs)")
    p.add_argument("--size", type=int, help="override every dataset's input size")
    p.add_argument("--max-iters-per-epoch", type=int, help="passed to yoloxkit train (smoke runs)")
    p.add_argument("--workers", type=int, default=None, help="data loader workers (default: yoloxkit's)")
    p.add_argument("--runs-dir", default="runs/bench_finetune", help="run folders (relative: to the repo root)")
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    return p.parse_args(argv)


def repo_path(path: str | Path) -> Path:
    """``path`` resolved against the repo root (absolute paths stay as they are)."""
    return (REPO / path).resolve()


def shown(path: Path) -> str:
    """``path`` relative to the repo root where it lies under it (for output and JSON)."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def run_settings(args: argparse.Namespace, spec: dict[str, Any]) -> tuple[int, int]:
    """(epochs, size) of a dataset's runs after the overrides."""
    return args.epochs or spec["epochs"], args.size or spec["size"]


def train_command(args: argparse.Namespace, spec: dict[str, Any], variant: str, seed: int, out: Path) -> list[str]:
    epochs, size = run_settings(args, spec)
    cmd = [sys.executable, "-m", "yoloxkit", "train", "--data", str(repo_path(spec["data"])), *spec["args"],
           "--model", "yolox-nano", "--epochs", str(epochs), "--size", str(size),
           "--batch-size", str(spec["batch_size"]), "--seed", str(seed),
           "--out", str(out), "--exist-ok", "--no-progress", "--no-plots"]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    if args.max_iters_per_epoch:
        cmd += ["--max-iters-per-epoch", str(args.max_iters_per_epoch)]
    official_lr = 0.01 * spec["batch_size"] / 64
    return cmd + [flag.format(official_lr=f"{official_lr:g}") for flag in VARIANTS[variant]]


def run_logged(cmd: list[str], log_stem: Path) -> tuple[int, str, str, float]:
    """Run ``cmd`` from the repo root on this tree's ``src``, its output to ``log_stem.{out,err}``:
    ``(exit status, stdout, stderr, wall seconds)``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    log_stem.parent.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_stem.with_suffix(".out"), log_stem.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        start = time.perf_counter()
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL).returncode
        seconds = time.perf_counter() - start
    return rc, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"), seconds


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


def read_curve(out: Path, stdout: str) -> tuple[str, list[float | None], float]:
    """``(metric name, metric per epoch 0..N, summed epoch seconds)`` of a finished run."""
    rows = json.loads((out / "history.json").read_text())
    match = EPOCH0.search(stdout)
    name = match.group(1) if match else "metric"
    curve: list[float | None] = [float(match.group(2)) if match else None]
    for row in sorted(rows, key=lambda r: r["epoch"]):
        curve += [None] * (row["epoch"] - len(curve))  # epochs missing from the history
        curve.append(float(row["ap"]) if row.get("ap") is not None else None)
    return name, curve, float(sum(row.get("time_s") or 0.0 for row in rows))


def test_figures(doc: dict[str, Any]) -> dict[str, Any]:
    """mAP50, mAP50-95 and per-class AP50 (percent) of a ``yoloxkit eval --json-out`` document."""
    voc = doc.get("metric") == "voc"
    detail = doc.get("per_class_detail", {})
    per_class = {}
    for name, value in doc.get("per_class", {}).items():
        ap50 = detail.get(name, {}).get("AP50")
        per_class[name] = value if voc and ap50 is None else ap50
    return {"metric": doc.get("metric"), "mAP50": doc.get("mAP50" if voc else "AP50"),
            "mAP50_95": doc.get("mAP50_95" if voc else "AP"), "per_class_AP50": per_class,
            "num_images": doc.get("num_images")}


def run_test(spec: dict[str, Any], out: Path, size: int) -> tuple[dict[str, Any] | None, str]:
    """Score ``out/best.pth`` on the dataset's test split: ``(figures, error)``."""
    json_out = out / "test_metrics.json"
    json_out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "yoloxkit", "eval", "--weights", str(out / "best.pth"),
           "--data", str(repo_path(spec["data"])), "--split", spec["test_split"], "--size", str(size),
           "--json-out", str(json_out), "--no-progress"]
    rc, _, stderr, _ = run_logged(cmd, out / "bench_eval")
    if rc != 0 or not json_out.is_file():
        return None, f"eval exited with {rc}:\n{tail(stderr)}"
    return test_figures(json.loads(json_out.read_text())), ""


def run_one(args: argparse.Namespace, dataset: str, variant: str, seed: int, runs: Path) -> RunResult:
    spec = DATASETS[dataset]
    out = runs / f"{dataset}-{variant}-s{seed}"
    result = RunResult(dataset, variant, seed, shown(out))
    rc, stdout, stderr, result.wall_s = run_logged(train_command(args, spec, variant, seed, out), out / "bench_train")
    if rc != 0 or not (out / "history.json").is_file():
        result.error = f"train exited with {rc}:\n{tail(stderr or stdout)}"
        return result
    result.metric, result.curve, result.epochs_s = read_curve(out, stdout)
    if spec["test_split"]:
        result.test, result.error = run_test(spec, out, run_settings(args, spec)[1])
    result.ok = not result.error
    return result


def fmt(value: float | None, sign: bool = False) -> str:
    if value is None or value != value:
        return "-"
    value = round(value, 1) + 0.0  # no "-0.0"
    return f"{value:+.1f}" if sign else f"{value:.1f}"


def worst_drop(curve: list[float | None]) -> float | None:
    """Min of the metric over epochs 1..N minus epoch 0."""
    later = [v for v in curve[1:] if v is not None]
    return min(later) - curve[0] if later and curve and curve[0] is not None else None


def best(curve: list[float | None]) -> str:
    """The best metric over epochs 0..N (what best.pth holds) and its epoch; values are compared at
    2 decimals, the precision of the epoch-0 value in the run's stdout, the earlier epoch winning."""
    scored = [(v, e) for e, v in enumerate(curve) if v is not None]
    if not scored:
        return "-"
    value, epoch = max(scored, key=lambda s: (round(s[0], 2), -s[1]))
    return f"{value:.1f} (e{epoch})"


def markdown_table(dataset: str, results: list[RunResult], epochs: int, size: int) -> str:
    spec = DATASETS[dataset]
    metric = next((r.metric for r in results if r.metric), "metric")
    n = max([len(r.curve) - 1 for r in results] + [0])
    classes = list(dict.fromkeys(c for r in results if r.test for c in r.test["per_class_AP50"]))
    headers = ["variant", "seed"] + [f"e{e}" for e in range(n + 1)] + ["worst drop", "best"]
    if spec["test_split"]:
        headers += ["test mAP50", "test mAP50-95"] + [f"AP50 {c}" for c in classes]
    headers += ["train s", "epochs s"]
    plural = "" if epochs == 1 else "s"
    lines = [f"### {dataset}: val {metric} (%) per epoch, yolox-nano, {size} px, {epochs} epoch{plural}", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in results:
        cells = [r.variant, str(r.seed)]
        curve = r.curve + [None] * (n + 1 - len(r.curve))
        cells += [fmt(v) for v in curve] + [fmt(worst_drop(r.curve), sign=True), best(r.curve)]
        if spec["test_split"]:
            test = r.test or {"per_class_AP50": {}}
            cells += [fmt(test.get("mAP50")), fmt(test.get("mAP50_95"))]
            cells += [fmt(test["per_class_AP50"].get(c)) for c in classes]
        cells += [f"{r.wall_s:.0f}", f"{r.epochs_s:.0f}"]
        if not r.ok:
            cells[0] += " (FAILED)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, args: argparse.Namespace, results: list[RunResult]) -> None:
    """All results and the settings, through a temporary file renamed into place."""
    doc = {"settings": {k: v for k, v in vars(args).items() if k != "json"},
           "datasets": {name: DATASETS[name] for name in args.datasets},
           "variants": {name: VARIANTS[name] for name in args.variants},
           "runs": [asdict(r) for r in results]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def report(result: RunResult) -> None:
    """One line per finished run; a failure adds the last lines of its stderr."""
    name = f"{result.dataset}/{result.variant} seed {result.seed}"
    if result.error:
        print(f"FAILED {name} ({result.out}): {result.error}", flush=True)
        return
    test = f", test mAP50 {fmt(result.test['mAP50'])}" if result.test else ""
    print(f"done {name}: {result.metric} e0 {fmt(result.curve[0])} -> best {best(result.curve)}, "
          f"worst drop {fmt(worst_drop(result.curve), sign=True)}{test}, {result.wall_s:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = repo_path(args.runs_dir)
    plan = [(d, v, s) for d in args.datasets for v in args.variants for s in args.seeds]
    results: list[RunResult] = []
    for i, (dataset, variant, seed) in enumerate(plan, 1):
        print(f"[{i}/{len(plan)}] {dataset}/{variant} seed {seed}: training ...", flush=True)
        results.append(run_one(args, dataset, variant, seed, runs))
        report(results[-1])
        if args.json:
            write_json(args.json, args, results)  # after every run: a long benchmark keeps what it has
    for dataset in args.datasets:
        epochs, size = run_settings(args, DATASETS[dataset])
        print("\n" + markdown_table(dataset, [r for r in results if r.dataset == dataset], epochs, size))
    if args.json:
        print(f"\nresults: {args.json}")
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"\n{len(failed)} of {len(results)} runs failed: "
              + ", ".join(f"{r.dataset}/{r.variant} s{r.seed}" for r in failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
