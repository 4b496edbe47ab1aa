"""Training data pipeline throughput: yoloxkit vs the reference (pixeltable-yolox) on coco-mini.

Both pipelines produce training samples from coco-mini train2017 with the official yolox-s
augmentation at 640 (Mosaic p=1.0 scale (0.1, 2), random affine degrees 10 / translate 0.1 /
shear 2, MixUp p=1.0 scale (0.5, 1.5), HSV p=1.0, flip p=0.5), decoding JPEGs from disk (no
cache), and are collated into float32 batches of 8. Everything runs in this one process with
OpenCV and torch on one thread, i.e. the throughput of one DataLoader worker. The two run in
alternating rounds so that machine noise hits both; the table shows the median images/s and the
median of the per-round ratios. ``--model yolox-nano --size 416`` measures the nano recipe.

    .venv/bin/python benchmarks/bench_data_pipeline.py [--rounds 5] [--batches 6] [--model yolox-s] [--size 640]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
COCO_MINI = REPO.parent / "shared" / "data" / "coco-mini"
BATCH = 8


def ours(data_dir: Path, model: str, size: int):
    from yoloxkit.data import load_dataset
    from yoloxkit.data.dataset import TrainingDataset
    from yoloxkit.data.loader import collate
    from yoloxkit.engine.config import training_recipe

    dataset = TrainingDataset(load_dataset(data_dir, "train2017"), size, training_recipe(model).augment(), seed=0)
    return dataset, collate


def reference(data_dir: Path, model: str, size: int):
    from torch.utils.data import default_collate
    from yolox.data import CocoDataset, MosaicDetection, TrainTransform

    from yoloxkit.engine.config import training_recipe

    aug = training_recipe(model).augment()
    base = CocoDataset(data_dir=str(data_dir), json_file="instances_train2017.json", name="train2017",
                       img_size=(size, size), preproc=TrainTransform(max_labels=50, flip_prob=aug.flip_prob,
                                                                    hsv_prob=aug.hsv_prob), cache=False)
    dataset = MosaicDetection(base, img_size=(size, size), mosaic=True,
                              preproc=TrainTransform(max_labels=120, flip_prob=aug.flip_prob, hsv_prob=aug.hsv_prob),
                              degrees=aug.degrees, translate=aug.translate, mosaic_scale=aug.mosaic_scale,
                              mixup_scale=aug.mixup_scale, shear=aug.shear, enable_mixup=aug.enable_mixup,
                              mosaic_prob=aug.mosaic_prob, mixup_prob=aug.mixup_prob)

    def collate(samples):
        return default_collate([(image, labels) for image, labels, _, _ in samples])

    return dataset, collate


def images_per_second(dataset, collate, start: int, batches: int) -> float:
    begin = time.perf_counter()
    index = start
    for _ in range(batches):
        samples = []
        for _ in range(BATCH):
            samples.append(dataset[index % len(dataset)])
            index += 1
        images, targets = collate(samples)
        assert images.dtype == torch.float32 and images.shape[:2] == (BATCH, 3) and targets.shape[-1] == 5
    return batches * BATCH / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=COCO_MINI)
    parser.add_argument("--model", default="yolox-s")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=6, help="batches of 8 per round and pipeline")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    random.seed(0)
    np.random.seed(0)
    pipelines = {"yoloxkit": ours(args.data, args.model, args.size),
                 "reference": reference(args.data, args.model, args.size)}
    for dataset, collate in pipelines.values():  # warm-up (page cache, lazy imports)
        images_per_second(dataset, collate, 0, 1)
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    for round_index in range(args.rounds):
        order = list(pipelines) if round_index % 2 == 0 else list(reversed(pipelines))
        for name in order:
            dataset, collate = pipelines[name]
            rates[name].append(images_per_second(dataset, collate, 1000 * round_index, args.batches))
    ratios = [a / b for a, b in zip(rates["yoloxkit"], rates["reference"])]

    print(f"# training data pipeline, {args.model} recipe at {args.size}, coco-mini train2017, one worker")
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, opencv {cv2.__version__}, "
          f"{args.rounds} rounds x {args.batches * BATCH} images")
    print()
    print("| pipeline | images/s (median) | min | max |")
    print("|---|---|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
    print()
    print(f"speed-up yoloxkit / reference: median of per-round ratios {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
