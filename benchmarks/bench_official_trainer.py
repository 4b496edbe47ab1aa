"""Whole training runs: the official trainer against yoloxkit's, same data, weights, seed, recipe.

(a) pixeltable-yolox 0.4.3's own ``yolox.core.trainer.Trainer`` with its yolox-nano (or tiny)
Exp, on CPU with its CUDA calls stubbed (``official_trainer_support.py``), and (b)
``yoloxkit.engine.trainer.Trainer`` with ``TrainConfig(recipe="official")`` train on a synthetic
COCO-format shapes dataset written to ``OUT/data`` (rectangles, circles, triangles; one image in
8 without objects), from one state dict ``OUT/init.pth`` (default: the bundled COCO nano weights
with new class rows, prepared as yoloxkit fine-tuning prepares them; ``--init random``), with
lr 0.01/64 per image, the given warm-up, no-aug epochs, batch size and seed, EMA, and each
trainer's own multi-scale and Mosaic settings. After every epoch the EMA weights of each are
scored on the val split by the same evaluator (yoloxkit's COCO evaluation, conf 0.01, NMS 0.65).

Printed (markdown) per seed and written to ``OUT/results.json``: iterations per epoch, the
0-based epoch at which Mosaic goes off and L1 goes on, optimiser groups, EMA updates, the
multi-scale range and the sizes drawn, the largest difference of the lr per iteration, images
without boxes fed, and per epoch the mean loss, wall time and AP / AP50 of each; with several
``--seeds``, AP / AP50 per epoch over the seeds. The two draw augmentations and sizes from
other random streams, so per-epoch losses and APs agree only statistically (a few-epoch run on
52 images moves AP by +-15 from seed to seed); ``--replay-official-sizes`` (a diagnostic)
makes yoloxkit train at the official run's sizes.

    .venv/bin/python benchmarks/bench_official_trainer.py [--epochs 6] [--no-aug-epochs 2]
        [--warmup-epochs 1] [--batch-size 8] [--images 52] [--val-images 16] [--size 320]
        [--seeds 0 1 2] [--workers 0] [--init bundled|bundled-raw|random] [--out DIR] [--quick]

About 2.5 minutes per seed on 2 CPU cores; ``--quick``: 3 epochs (1 no-aug, 1 warm-up) on
28 + 8 images, about a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from yoloxkit.data import load_dataset
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.evaluation import evaluate_model
from yoloxkit.engine.finetune import load_for_finetune, rescale_folded_convs
from yoloxkit.engine import trainer as trainer_module
from yoloxkit.engine.hooks import Hook
from yoloxkit.engine.trainer import Trainer
from yoloxkit.models import build_network
from yoloxkit.packaged import bundled_weights_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_trainer_support import (  # noqa: E402
    OfficialSettings, optimizer_groups, run_official, seeds_table, summarise, table)

NAMES = ["rectangle", "circle", "triangle"]
COLOURS = [(40, 40, 220), (40, 200, 40), (220, 120, 30)]  # BGR per class


# ---------------------------------------------------------------------------- data and weights
def _draw(image: np.ndarray, cls: int, box: tuple[int, int, int, int], colour: tuple[int, ...]) -> None:
    x1, y1, x2, y2 = box
    if cls == 0:
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), colour, thickness=-1)
    elif cls == 1:
        cv2.ellipse(image, (((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), 0.0), colour, thickness=-1)
    else:
        points = np.array([[(x1 + x2) // 2, y1], [x1, y2 - 1], [x2 - 1, y2 - 1]], dtype=np.int32)
        cv2.fillPoly(image, [points], colour)


def make_shapes_dataset(root: Path, splits: dict[str, int], size: int, seed: int) -> Path:
    """COCO-format shapes data: ``root/<split>/*.jpg`` and ``root/annotations/instances_<split>.json``;
    1-4 non-overlapping shapes per image (box = the shape's extent), one image in 8 without any."""
    rng = np.random.default_rng(seed)
    for split, count in splits.items():
        content: dict[str, list] = {"images": [], "annotations": [],
                                    "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)]}
        (root / split).mkdir(parents=True, exist_ok=True)
        for k in range(1, count + 1):
            image = rng.normal(100, 18, (size, size, 3)).clip(0, 255).astype(np.uint8)
            boxes: list[tuple[int, int, int, int]] = []
            wanted = 0 if k % 8 == 0 else int(rng.integers(1, 5))
            for _ in range(40):
                if len(boxes) == wanted:
                    break
                w, h = (int(v) for v in rng.integers(size // 10, size // 3, 2))
                x1, y1 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                box = (x1, y1, x1 + w, y1 + h)
                if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
                    continue
                cls = int(rng.integers(0, len(NAMES)))
                colour = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in COLOURS[cls])
                _draw(image, cls, box, colour)
                boxes.append(box)
                content["annotations"].append({"id": len(content["annotations"]) + 1, "image_id": k,
                                               "category_id": cls + 1, "bbox": [x1, y1, w, h],
                                               "area": w * h, "iscrowd": 0})
            name = f"{split}_{k:04d}.jpg"
            cv2.imwrite(str(root / split / name), image)
            content["images"].append({"id": k, "file_name": name, "width": size, "height": size})
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(content))
    return root


def initial_weights(model_name: str, init: str, seed: int, path: Path) -> Path:
    """One state dict for both trainers, built by yoloxkit and saved as ``{"model", "names"}``."""
    torch.manual_seed(seed)
    model = build_network(model_name, num_classes=len(NAMES))
    if init != "random":
        report = load_for_finetune(model, bundled_weights_path(), NAMES, model_name)
        print(f"# init: {report.message()}")
        if init == "bundled":
            changed = rescale_folded_convs(model)
            print(f"# init: rescaled {changed} BN-folded conv kernels (yoloxkit's default for these weights)")
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    from yolox.config import YoloxConfig  # strict load into the official model: same key names

    reference = YoloxConfig.get_named_config(model_name.replace("-", "_"))
    reference.num_classes = len(NAMES)
    reference.get_model().load_state_dict(state, strict=True)
    torch.save({"model": state, "names": NAMES}, path)
    return path


class Scorer:
    """The one evaluator of both runs: a state dict loaded strictly into a yoloxkit model,
    scored on the val split with COCO AP (percent)."""

    def __init__(self, model_name: str, data_dir: Path, split: str, size: int) -> None:
        self.model = build_network(model_name, num_classes=len(NAMES))
        self.data = load_dataset(data_dir, split=split)
        self.size = size

    def __call__(self, state: dict[str, torch.Tensor]) -> dict[str, float]:
        self.model.load_state_dict(state, strict=True)
        _, _, metrics = evaluate_model(self.model, NAMES, self.data, self.size, conf=0.01, nms=0.65, device="cpu")
        return {"AP": float(metrics["AP"]), "AP50": float(metrics["AP50"])}


# ---------------------------------------------------------------------------- yoloxkit run
def run_yoloxkit(args: argparse.Namespace, seed: int, out: Path, data_dir: Path, init: Path, score: Scorer,
                 replay_sizes: list[int] | None = None) -> dict[str, Any]:
    """Train with yoloxkit's Trainer; the same records as :func:`run_official`. ``replay_sizes``
    (diagnostic): the input size of each iteration, instead of yoloxkit's own draws."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    extra = {"recipe": "official"} if "recipe" in fields else {}
    cfg = TrainConfig(
        data=str(data_dir), model=args.model, train_split="train", val_split="val", weights=str(init),
        rescale_convs=False, out=str(out), device="cpu", seed=seed, epochs=args.epochs,
        batch_size=args.batch_size, warmup_epochs=args.warmup_epochs, no_aug_epochs=args.no_aug_epochs,
        size=args.size, workers=args.workers, eval_interval=0, plots=False, tensorboard=False,
        progress=False, **extra,
    )
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "log.txt").open("w")
    trainer = Trainer(cfg, log=lambda line: print(line, file=log_file, flush=True))
    iters: list[dict[str, Any]] = []
    epochs: list[dict[str, Any]] = []
    orig_one_iter = trainer.train_one_iter

    def train_one_iter(batch: Any) -> tuple[dict[str, float], int]:
        parts, state = trainer.parts, trainer.state
        targets = batch[1]
        mosaic = bool(parts.pipeline.dataset.mosaic_enabled)
        if not epochs or epochs[-1]["epoch"] != state.epoch:
            epochs.append({"epoch": state.epoch, "iterations": parts.iters_per_epoch, "mosaic": mosaic,
                           "l1": bool(parts.criterion.use_l1), "start": time.perf_counter()})
        record = {"epoch": state.epoch, "iter": state.global_iter, "mosaic_flag": mosaic,
                  "empty": int((targets.abs().sum(dim=2) == 0).all(dim=1).sum())}
        losses, size = orig_one_iter(batch)
        record.update(lr=float(trainer.current_lr), size=int(size), **losses)
        iters.append(record)
        return losses, size

    class ScoreHook(Hook):
        def after_epoch(self, run: Any, end: Any) -> None:
            row = epochs[-1]
            row["time_s"] = time.perf_counter() - row.pop("start")
            start = time.perf_counter()
            state = {k: v.detach().clone() for k, v in run.parts.inference_model.state_dict().items()}
            row.update(score(state))
            row["eval_s"] = time.perf_counter() - start
            print(f"yoloxkit epoch {row['epoch']}: AP {row['AP']:.2f} AP50 {row['AP50']:.2f} ({row['time_s']:.0f} s)",
                  flush=True)

    trainer.train_one_iter = train_one_iter
    trainer.hooks.append(ScoreHook())
    own_sizes = trainer_module.size_for_iteration
    if replay_sizes is not None:
        trainer_module.size_for_iteration = lambda iteration, base, *rest, **kw: (
            replay_sizes[iteration] if iteration < len(replay_sizes) else base)
    try:
        trainer.fit()
    finally:
        trainer_module.size_for_iteration = own_sizes
        log_file.close()
    resolved = trainer.cfg
    parts = trainer.parts
    return {"iters": iters, "epochs": epochs, "size_range": list(resolved.size_range),
            "optimizer_groups": optimizer_groups(parts.optimizer),
            "ema_updates": int(parts.ema.updates) if parts.ema else 0,
            "recipe": extra.get("recipe", "(no recipe field: defaults)")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolox-nano", choices=["yolox-nano", "yolox-tiny"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--no-aug-epochs", type=int, default=2)
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=52, help="training images (52: not a multiple of the batch)")
    parser.add_argument("--val-images", type=int, default=16)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds; each gives one run of both (data and initial weights: --data-seed)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the shapes data and of the new class rows")
    parser.add_argument("--workers", type=int, default=0,
                        help="loader workers of both (0: the official run is deterministic)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", default="bundled", choices=["bundled", "bundled-raw", "random"],
                        help="bundled: COCO nano weights with conv rescaling (yoloxkit's default for them); "
                             "bundled-raw: without it; random: a random start")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary one)")
    parser.add_argument("--replay-official-sizes", action="store_true",
                        help="diagnostic: yoloxkit trains at the sizes the official run drew, iteration by iteration")
    parser.add_argument("--quick", action="store_true", help="3 epochs, 28 + 8 images: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.no_aug_epochs, args.warmup_epochs, args.images, args.val_images = 3, 1, 1, 28, 8
    if args.init != "random" and args.model != "yolox-nano":
        parser.error("--init bundled needs --model yolox-nano (the bundled weights); use --init random")
    if args.no_aug_epochs >= args.epochs:
        parser.error(f"--no-aug-epochs {args.no_aug_epochs} must be below --epochs {args.epochs}")
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="bench_official_trainer_"))
    return args


def run_seed(args: argparse.Namespace, seed: int, data_dir: Path, init: Path, score: Scorer) -> dict[str, Any]:
    """Both trainers with training seed ``seed``; prints this seed's table."""
    out = args.out / f"seed{seed}"
    settings = OfficialSettings(
        data_dir=data_dir, train_split="train", val_split="val", num_classes=len(NAMES), size=args.size,
        epochs=args.epochs, warmup_epochs=args.warmup_epochs, no_aug_epochs=args.no_aug_epochs,
        batch_size=args.batch_size, seed=seed, workers=args.workers, init_weights=init, out_dir=out, model=args.model,
    )
    started = time.perf_counter()
    official_raw = run_official(settings, score)
    official_s = time.perf_counter() - started
    started = time.perf_counter()
    replay = [r["size"] for r in official_raw["iters"]] if args.replay_official_sizes else None
    ours_raw = run_yoloxkit(args, seed, out / "yoloxkit", data_dir, init, score, replay)
    ours_s = time.perf_counter() - started

    from yolox.config import YoloxConfig

    reference = YoloxConfig.get_named_config(args.model.replace("-", "_"))
    low, high = reference.random_size if reference.random_size else (args.size // 32 - 5, args.size // 32 + 5)
    info = {"official_size_range": [32 * low, 32 * high], "yoloxkit_size_range": ours_raw["size_range"]}
    official, ours = summarise(official_raw), summarise(ours_raw)
    print(f"\nseed {seed}: yoloxkit recipe {ours_raw['recipe']}{' with the official sizes replayed' if replay else ''}; "
          f"whole runs (with evaluation) {official_s:.0f} s official / {ours_s:.0f} s yoloxkit\n")
    print(table(official, ours, info), flush=True)
    return {"seed": seed, **info, "official": {**official, "iters": official_raw["iters"]},
            "yoloxkit": {**ours, "iters": ours_raw["iters"]}, "run_s": {"official": official_s, "yoloxkit": ours_s}}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = {"train": args.images, "val": args.val_images}
    data_dir = make_shapes_dataset(args.out / "data", splits, args.size, args.data_seed)
    init = initial_weights(args.model, args.init, args.data_seed, args.out / "init.pth")
    score = Scorer(args.model, data_dir, "val", args.size)
    start_scores = score(torch.load(init, weights_only=True)["model"])
    print(f"{args.model}, {args.images} train / {args.val_images} val shapes images at {args.size}, {args.epochs} epochs "
          f"(warm-up {args.warmup_epochs}, no-aug {args.no_aug_epochs}), batch {args.batch_size}, seeds {args.seeds}, "
          f"init {args.init} (AP {start_scores['AP']:.1f} / AP50 {start_scores['AP50']:.1f}), workers {args.workers}, "
          f"{torch.get_num_threads()} threads; data {data_dir}", flush=True)
    runs = [run_seed(args, seed, data_dir, init, score) for seed in args.seeds]
    if len(runs) > 1:
        print(f"\nAP over {len(runs)} seeds (mean ± sd; epoch 0-based, EMA weights, val split):\n")
        print(seeds_table(runs))
    results = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "initial": start_scores, "runs": runs}
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    print(f"\nresults: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
