"""The paper's roadmap (Table 2) on this machine: every row trained for the same budget on the same
small data, evaluated, sized and timed, printed beside the paper's figures.

Rows (``yoloxkit.models.ROADMAP_ROWS``): the YOLOv3 baseline, + decoupled head, + strong
augmentation, + anchor-free, + multi positives, + SimOTA (``yolox-darknet53``) and + NMS free
(``yolox-darknet53-e2e``). Each trains from random weights with yoloxkit's own Trainer and its row's
recipe (``--recipe official``; Mosaic/MixUp only from the strong-augmentation row on), the same
seed, epochs, batch size and fixed input size (no multi-scale, so every row sees the same pixels
per step), on the synthetic COCO-format shapes set of ``bench_official_trainer.py`` (rectangles,
circles, triangles) or on ``--data`` (a dataset directory yoloxkit reads). Its EMA weights are
then scored on the val split (COCO AP, conf 0.01, NMS 0.65; the NMS-free row with its top-k).

Printed (markdown) and written to ``OUT/results.json``: per row its AP / AP50, final training
loss, training seconds, parameters and GFLOPs at 640 (``yoloxkit.models.info``, counted as the
official ``get_model_info``), the CPU latency of one 640x640 image (batch 1, eval forward without
post-processing, median of ``--latency-runs``, ``--threads`` torch threads) and its ratio to the
baseline's, next to the paper's AP, size and V100 latency ratio.

    .venv/bin/python benchmarks/bench_roadmap.py [--epochs 3] [--images 32] [--val-images 16]
        [--size 192] [--batch-size 4] [--seed 0] [--latency-runs 3] [--threads 2]
        [--rows NAME ...] [--data DIR] [--no-train] [--no-latency] [--out DIR]

What such a run can show: that every row builds, trains end to end with its own head, assigner
and recipe, and costs what the table says; what it cannot: the paper's AP steps, which come from
300 COCO epochs on 8 GPUs (a few CPU epochs from random weights leave every row near zero AP, and
the ordering of the rows at that point is noise).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from yoloxkit.data import load_dataset
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.evaluation import evaluate_model
from yoloxkit.engine.trainer import Trainer
from yoloxkit.models import PAPER_TABLE2, ROADMAP_ROWS, build_network
from yoloxkit.models.info import count_gflops, count_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_official_trainer import NAMES, make_shapes_dataset  # noqa: E402


def train_row(row: str, args: argparse.Namespace, data_dir: Path, out: Path) -> dict[str, Any]:
    """Train ``row`` for the budget of ``args`` and score its EMA weights on the val split."""
    cfg = TrainConfig(
        data=str(data_dir), model=row, weights="none", recipe="official", out=str(out), device="cpu",
        seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, warmup_epochs=1,
        no_aug_epochs=1, size=args.size, multiscale=False, workers=0, eval_interval=0, plots=False,
        tensorboard=False, progress=False, train_split="train", val_split="val",
    )
    out.mkdir(parents=True, exist_ok=True)
    losses: list[float] = []
    with (out / "log.txt").open("w") as log_file:
        trainer = Trainer(cfg, log=lambda line: print(line, file=log_file, flush=True))
        start = time.perf_counter()
        result = trainer.fit()
        seconds = time.perf_counter() - start
    for row_history in result.history:
        if "total_loss" in row_history:
            losses.append(float(row_history["total_loss"]))
    state = torch.load(result.last, map_location="cpu", weights_only=True)
    names = list(state.get("names") or NAMES)
    model = build_network(row, num_classes=len(names))
    model.load_state_dict(state["model"], strict=True)
    data = load_dataset(data_dir, split="val")
    _, _, metrics = evaluate_model(model, names, data, args.size, conf=0.01, nms=0.65, device="cpu")
    return {"AP": 100 * float(metrics["AP"]), "AP50": 100 * float(metrics["AP50"]), "train_s": seconds,
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None}


def latency_ms(row: str, runs: int) -> float:
    """Median CPU latency of one 640x640 eval forward (no post-processing), in milliseconds."""
    model = build_network(row).eval()
    image = torch.zeros(1, 3, 640, 640)
    times = []
    with torch.inference_mode():
        model(image)  # warm-up
        for _ in range(runs):
            start = time.perf_counter()
            model(image)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown table of the run beside the paper's figures."""
    base = results.get(ROADMAP_ROWS[0], {}).get("latency_ms")
    paper_base = PAPER_TABLE2[ROADMAP_ROWS[0]].latency_ms
    lines = ["| row | model | AP / AP50 (here) | paper AP | params (here / paper) | GFLOPs (here / paper) "
             "| CPU ms at 640 (ratio) | paper V100 ms (ratio) |", "|---" * 8 + "|"]
    for row, got in results.items():
        paper = PAPER_TABLE2[row]
        ap = f"{got['AP']:.1f} / {got['AP50']:.1f}" if "AP" in got else "-"
        ms = got.get("latency_ms")
        latency = f"{ms:.0f} ({ms / base:.2f})" if ms and base else "-"
        lines.append(
            f"| {paper.row} | {row} | {ap} | {paper.ap} | {got['params'] / 1e6:.2f} M / {paper.params_m:.2f} M "
            f"| {got['gflops']:.1f} / {paper.gflops} | {latency} | {paper.latency_ms} ({paper.latency_ms / paper_base:.2f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROADMAP_ROWS), choices=list(ROADMAP_ROWS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--val-images", type=int, default=16)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", help="a dataset directory with train and val splits (default: generated shapes)")
    parser.add_argument("--no-train", action="store_true", help="sizes and latency only")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--out", help="output folder (default: a temporary one)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_roadmap_"))
    data_dir = Path(args.data) if args.data else make_shapes_dataset(
        out / "data", {"train": args.images, "val": args.val_images}, args.size, args.seed)
    results: dict[str, dict[str, Any]] = {}
    for row in args.rows:
        model = build_network(row)
        got: dict[str, Any] = {"params": count_parameters(model), "gflops": count_gflops(model, 640)}
        del model
        if not args.no_latency:
            got["latency_ms"] = latency_ms(row, args.latency_runs)
        if not args.no_train:
            got.update(train_row(row, args, data_dir, out / "runs" / row))
        results[row] = got
        print(f"{row}: {json.dumps(got)}", flush=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out",)}
    (out / "results.json").write_text(json.dumps({"settings": settings, "torch": torch.__version__,
                                                  "rows": results}, indent=1))
    print(table(results))
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
