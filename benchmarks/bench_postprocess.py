"""Post-processing cost of NMS-free (top-k) vs class-aware NMS, and predict latency of a base
model with NMS vs an end-to-end model with top-k.

Part 1, post-processing only, on the same predictions: the bundled yolox-nano's decoded outputs
``[1, A, 85]`` on the first ``--count`` images of ../shared/data/coco-mini/val2017 at ``--size``
(default 416), computed once; then per image ``infer.postprocess.postprocess`` (best class,
``conf``, class-aware NMS, image pixels) and ``infer.topk.topk_postprocess`` (best class,
``conf``, top 100, image pixels), at conf 0.001 / NMS 0.65 (evaluation) and conf 0.25 / NMS 0.45
(predict). Both run on the CPU; the table also gives the mean detections per image.

Part 2, end to end (``Detector.predict_arrays`` on one decoded image: letterbox, network,
decode, post-processing): yolox-nano with NMS vs the end-to-end model with top-k (its PSS branch
adds two 3x3 convs per level). ``--weights-e2e`` takes a trained e2e checkpoint; by default it is
``yolox-nano-e2e`` with the bundled base weights, whose fresh PSS branch scores every box
x0.01, so at conf 0.25 nothing passes; ``--pss-bias 20`` sets the PSS biases high (sigma(pss) = 1,
the base model's scores) to time a realistic number of boxes instead.

Paths are timed in interleaved rounds (every path once per round) so that load drifts hit them
alike; medians, p90 and the best call per image are reported.

    .venv/bin/python benchmarks/bench_postprocess.py
    .venv/bin/python benchmarks/bench_postprocess.py --weights-e2e runs/train/e2e/best.pth
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "coco-mini" / "val2017"
#: (label, conf, NMS IoU) of the two settings timed
SETTINGS = (("eval", 0.001, 0.65), ("predict", 0.25, 0.45))


def _stats(seconds: list[float]) -> tuple[float, float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 90)), float(ms.min())


def _rounds(paths: dict, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Time each ``paths[label]()`` once per round, interleaved; seconds per call."""
    for fn in paths.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {label: [] for label in paths}
    for _ in range(rounds):
        for label, fn in paths.items():
            start = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - start)
    return times


def postprocess_rows(images, size: int, rounds: int, warmup: int, max_dets: int) -> list[str]:
    """Part 1: per-image post-processing time on the bundled nano's predictions."""
    from yoloxkit import Detector
    from yoloxkit.imaging import letterbox_batch
    from yoloxkit.infer.postprocess import postprocess
    from yoloxkit.infer.topk import topk_postprocess

    detector = Detector("yolox-nano", size=size)
    cached = []
    for image in images:
        batch, ratios = letterbox_batch([image], detector.size)
        cached.append((detector.network.infer(batch), ratios, [image.shape[:2]]))
    rows = []
    for label, conf, iou in SETTINGS:
        counts = {"NMS": [], "top-k": []}

        def run_nms(conf=conf, iou=iou):
            for pred, ratios, sizes in cached:
                counts["NMS"].append(len(postprocess(pred, ratios, sizes, conf=conf, nms=iou)[0][1]))

        def run_topk(conf=conf):
            for pred, ratios, sizes in cached:
                counts["top-k"].append(len(topk_postprocess(pred, ratios, sizes, conf=conf, max_dets=max_dets)[0][1]))

        times = _rounds({f"class-aware NMS {iou}": run_nms, f"top-k {max_dets} (no NMS)": run_topk}, rounds, warmup)
        for (path, seconds), kind in zip(times.items(), ("NMS", "top-k")):
            per_image = [s / len(cached) for s in seconds]
            median, p90, best = _stats(per_image)
            dets = np.mean(counts[kind]) if counts[kind] else 0.0
            rows.append(f"| {label} | {conf:g} | {path} | {median:.3f} | {p90:.3f} | {best:.3f} | {dets:.1f} |")
    return rows


def predict_rows(images, size: int, rounds: int, warmup: int, weights_e2e: str | None,
                 pss_bias: float | None) -> list[str]:
    """Part 2: predict latency per image, base model with NMS vs end-to-end model with top-k."""
    from yoloxkit import Detector
    from yoloxkit.weights import load_model

    base = Detector("yolox-nano", size=size)
    if pss_bias is None:
        e2e = Detector("yolox-nano-e2e" if weights_e2e is None else None, weights=weights_e2e, size=size)
    else:
        loaded = load_model("yolox-nano-e2e" if weights_e2e is None else None, weights_e2e)
        for conv in loaded.model.head.pss_preds:
            torch.nn.init.constant_(conv.bias, float(pss_bias))
        e2e = Detector.from_model(loaded.model, loaded.names, size, model_name=loaded.model_name)
    if not e2e.nms_free:
        raise SystemExit(f"{weights_e2e} is not an end-to-end model")
    counts: dict[str, list[int]] = {}
    paths = {}
    for label, detector in ((f"{base.model_name} + NMS 0.45", base), (f"{e2e.model_name} + top-k", e2e)):
        counts[label] = []

        def run(detector=detector, label=label):
            for image in images:
                counts[label].append(len(detector.predict_arrays([image])[0]))

        paths[label] = run
    times = _rounds(paths, rounds, warmup)
    rows = []
    for label, seconds in times.items():
        median, p90, best = _stats([s / len(images) for s in seconds])
        rows.append(f"| {label} | {median:.2f} | {p90:.2f} | {best:.2f} | {np.mean(counts[label]):.1f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of images (default coco-mini val2017)")
    parser.add_argument("--count", type=int, default=8, help="images used (default 8)")
    parser.add_argument("--size", type=int, default=416, help="input size (default 416)")
    parser.add_argument("--max-dets", type=int, default=100, help="top-k size (default 100)")
    parser.add_argument("--weights-e2e", help="end-to-end checkpoint (default: yolox-nano-e2e, bundled base weights)")
    parser.add_argument("--pss-bias", type=float, help="set the e2e model's PSS biases (e.g. 20: sigma(pss) = 1)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per path first (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from yoloxkit.imaging import list_images, load_images

    files = list_images(args.images)[: args.count]
    if not files:
        raise SystemExit(f"no images in {args.images}")
    images, _ = load_images([str(f) for f in files])

    print(f"{len(images)} images of {args.images} at {args.size}, {args.threads} threads, CPU, {platform.machine()},"
          f" torch {torch.__version__}")
    print()
    print("Post-processing per image, same yolox-nano predictions (ms):")
    print()
    print("| setting | conf | path | median ms | p90 ms | best ms | detections/image |")
    print("|---|---|---|---|---|---|---|")
    for row in postprocess_rows(images, args.size, args.rounds, args.warmup, args.max_dets):
        print(row, flush=True)
    print()
    print("predict latency per image, end to end, conf 0.25 (ms):")
    print()
    print("| path | median ms | p90 ms | best ms | detections/image |")
    print("|---|---|---|---|---|")
    for row in predict_rows(images, args.size, args.rounds, args.warmup, args.weights_e2e, args.pss_bias):
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
