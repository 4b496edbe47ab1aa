"""COCO metric computation on coco-mini val2017: faster-coco-eval vs plain pycocotools.

Times only the metric computation (ground-truth index, loading the results, evaluate,
accumulate, summarize) on one fixed set of predictions, not inference. The predictions come
from yolox-nano at 416 with the official eval thresholds (conf 0.01, NMS 0.65), made once before
the timing starts (``--predictions synthetic`` uses jittered ground truth instead, no model).
Each engine is run once to warm up, then ``--repeat`` times interleaved; the table shows the
median and the best time and the speed-up of the median over pycocotools, plus the VOC evaluator.

    .venv/bin/python benchmarks/bench_coco_metrics.py [--repeat 7] [--predictions model|synthetic]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COCO_MINI = REPO.parent / "shared" / "data" / "coco-mini"


def model_predictions(data, size: int):
    from yoloxkit import Detector
    from yoloxkit.evaluate.runner import class_mapping, collect_predictions

    detector = Detector("yolox-nano", size=size, conf=0.01, nms=0.65)
    return collect_predictions(detector, data, class_mapping(detector.names, data), progress=True)


def synthetic_predictions(data, seed: int = 0):
    from yoloxkit.evaluate import ImagePredictions

    rng = np.random.default_rng(seed)
    out = []
    for r in data.records:
        copies = np.repeat(r.boxes.astype(np.float64), 8, axis=0)
        wh = np.tile(copies[:, 2:] - copies[:, :2], 2)
        boxes = copies + rng.normal(0, 0.15, copies.shape) * wh
        classes = np.repeat(r.class_ids, 8)
        xy = rng.random((40, 2)) * [r.width * 0.8, r.height * 0.8]
        boxes = np.concatenate([boxes, np.concatenate([xy, xy + rng.random((40, 2)) * 150 + 4], axis=1)])
        classes = np.concatenate([classes, rng.integers(0, len(data.names), 40)])
        out.append(ImagePredictions(boxes, rng.random(len(boxes)), classes))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--predictions", choices=("model", "synthetic"), default="model")
    parser.add_argument("--size", type=int, default=416)
    args = parser.parse_args()

    from importlib import metadata

    import faster_coco_eval
    import torch

    from yoloxkit.data import load_dataset
    from yoloxkit.evaluate.coco import (
        coco_category_ids,
        coco_detections,
        coco_evaluate,
        coco_ground_truth,
        coco_image_ids,
    )
    from yoloxkit.evaluate.voc import voc_evaluate

    torch.set_num_threads(2)
    data = load_dataset(COCO_MINI, split="val2017")
    predictions = model_predictions(data, args.size) if args.predictions == "model" else synthetic_predictions(data)
    gt = coco_ground_truth(data)
    image_ids = coco_image_ids(data, gt)
    category_ids = coco_category_ids(data)
    detections = coco_detections(predictions, image_ids, category_ids)

    runs = {
        "pycocotools": lambda: coco_evaluate(gt, detections, image_ids, category_ids, engine="pycocotools"),
        "faster-coco-eval": lambda: coco_evaluate(gt, detections, image_ids, category_ids, engine="faster-coco-eval"),
        "yoloxkit VOC (10 IoUs)": lambda: voc_evaluate(data.records, predictions, len(data.names)),
    }
    results = {name: fn() for name, fn in runs.items()}  # warm-up (imports, first-call costs)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

    fast, ref = results["faster-coco-eval"], results["pycocotools"]
    max_diff = max(np.abs(fast.stats - ref.stats).max(), np.abs(fast.precision - ref.precision).max())
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
          f"pycocotools {metadata.version('pycocotools')}, "
          f"faster-coco-eval {faster_coco_eval.__version__}, numpy {np.__version__}")
    print(f"coco-mini val2017: {len(data.records)} images, {len(detections)} detections "
          f"({args.predictions} predictions), repeat {args.repeat}")
    print(f"AP {ref.stats[0] * 100:.2f} (pycocotools) vs {fast.stats[0] * 100:.2f} (faster-coco-eval); "
          f"max |difference| over the 12 numbers and the precision array: {max_diff:.1e}")
    print()
    base = statistics.median(times["pycocotools"])
    print(f"| {'metric computation':<24} | {'median s':>8} | {'best s':>7} | {'speed-up vs pycocotools':>23} |")
    print(f"|{'-' * 26}|{'-' * 10}:|{'-' * 9}:|{'-' * 25}:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name:<24} | {median:8.3f} | {min(values):7.3f} | {base / median:22.1f}x |")


if __name__ == "__main__":
    main()
