"""Edge INT8 recipes (issue 28) on two datasets: which layer groups LiteRT's INT8 file keeps in
float, measured on COCO and on a domain far from it, with MNN's default recipe for the record.

* ``coco``: the bundled yolox-nano at 416, calibrated on 64 images of
  ``../shared/data/coco-mini/train2017``, scored on its val2017 (79 images, COCO AP@[.5:.95]).
* ``bccd``: a yolox-nano fine-tuned on ``../shared/data/bccd`` (blood cells, VOC layout; the
  checkpoint given by ``--bccd-weights``), calibrated on 64 of its train images, scored on its
  test split (72 images, VOC mAP@0.5), at 416.

For each, ``quantize_tflite`` writes the float ``.tflite`` and the INT8 ``.tflite`` (A8W8, the
output tail always float) of four layer selections kept in float: none, stem+dark2,
stem+dark2+preds and stem+dark2+dark3+preds (the default
:class:`~yoloxkit.quantize.tflite_int8.TfliteInt8Recipe`); then ``quantize_mnn`` with its default recipe. Accuracy is yoloxkit's own
pipeline through the file's backend (``litert``, ``mnn``; thresholds 0.01 / 0.65); latency is the
network alone on one letterboxed image, INT8 against its own float file in the same runtime,
interleaved calls, median, ``--threads`` threads (``compare_files``), the median ratio over
``--repeats`` comparisons. Prints one Markdown table per dataset ("quantise s": the wall time of
``quantize_tflite`` / ``quantize_mnn``, the float conversion included).

Make the BCCD checkpoint first (20 epochs: about 10 minutes on a 2-core CPU; test mAP50 91.6),
then run (about 5 minutes on the same CPU: 8 LiteRT conversions and calibrations, 2 MNN
quantisations, 14 evaluations; docs/BENCHMARKS.md, "Edge INT8 recipes", has the results):

    yoloxkit train --data ../shared/data/bccd --train-split train --val-split val --model yolox-nano \\
        --epochs 20 --batch-size 16 --size 416 --out /tmp/bccd-nano
    .venv/bin/python benchmarks/bench_edge_int8.py --bccd-weights /tmp/bccd-nano/best.pth
    .venv/bin/python benchmarks/bench_edge_int8.py --datasets coco       # COCO only, no checkpoint needed
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yoloxkit.benchmarking import cpu_features
from yoloxkit.data import DetectionData, load_dataset
from yoloxkit.export import ExportOptions
from yoloxkit.quantize import calibration_files, calibration_inputs
from yoloxkit.quantize.accuracy import file_accuracy
from yoloxkit.quantize.compare import compare_files
from yoloxkit.quantize.mnn_int8 import MnnInt8Recipe, quantize_mnn
from yoloxkit.quantize.tflite_int8 import TfliteInt8Recipe, quantize_tflite
from yoloxkit.weights import build_model_with_weights

SHARED = Path(__file__).resolve().parents[2] / "shared"
COCO = SHARED / "data" / "coco-mini"
BCCD = SHARED / "data" / "bccd"
SIZE = (416, 416)
INT8_OPSET = 13  # per-channel weights in the ONNX graph MNN converts (as ``export --int8``)
#: the layer groups kept in float, each with the output tail (the default: stem+dark2+dark3+preds)
SELECTIONS: tuple[tuple[str, ...], ...] = ((), ("stem", "dark2"), ("stem", "dark2", "preds"),
                                           ("stem", "dark2", "dark3", "preds"))
VERSIONS = ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "MNN")


@dataclass(frozen=True)
class Case:
    """One dataset: the model, its calibration images, the split scored and the metric's name."""

    label: str
    model: nn.Module
    options: ExportOptions
    images: np.ndarray
    data: DetectionData
    metric: str


def coco_case(count: int) -> Case:
    """The bundled nano; calibration on coco-mini train2017, COCO AP on val2017."""
    model, names, model_name = build_model_with_weights("yolox-nano")
    images, _ = calibration_inputs(calibration_files(COCO / "train2017", count), SIZE)
    data = load_dataset(COCO, split="val2017")
    options = ExportOptions(size=SIZE, opset=INT8_OPSET, names=tuple(names) if names else None, model_name=model_name)
    return Case("coco-mini val2017, bundled yolox-nano", model, options, images, data, "COCO AP")


def bccd_case(weights: Path, count: int) -> Case:
    """The fine-tuned nano at ``weights``; calibration on BCCD train, VOC mAP50 on BCCD test."""
    model, names, model_name = build_model_with_weights("yolox-nano", weights)
    train = load_dataset(BCCD, split="train", default_prefix="train")
    images, _ = calibration_inputs(calibration_files([r.path for r in train.records], count), SIZE)
    data = load_dataset(BCCD, split="test")
    options = ExportOptions(size=SIZE, opset=INT8_OPSET, names=tuple(names) if names else None, model_name=model_name)
    return Case(f"BCCD test, yolox-nano fine-tuned ({weights.name})", model, options, images, data, "VOC mAP50")


def latency_ratio(fmt: str, float_file: Path, int8_file: Path, images: np.ndarray, threads: int,
                  repeats: int) -> tuple[float, float, float]:
    """(INT8 / float median latency, median of ``repeats`` comparisons; float ms; INT8 ms)."""
    batches = [images[i : i + 1] for i in range(min(4, len(images)))]
    runs = [compare_files(fmt, float_file, int8_file, batches, scores_only=True, threads=threads)
            for _ in range(repeats)]
    ratios = [r.int8_ms / r.float_ms for r in runs]
    pick = runs[int(np.argsort(ratios)[len(ratios) // 2])]
    return float(np.median(ratios)), pick.float_ms, pick.int8_ms


def row(label: str, accuracy: float, reference: float, timing: tuple[float, float, float] | None,
        seconds: float) -> str:
    """One Markdown row: recipe | accuracy | drop | latency ratio | int8 / float ms | quantise s."""
    if timing is None:
        return f"| {label} | {accuracy:.2f} | | 1.00x | | {seconds:.0f} |"
    ratio, float_ms, int8_ms = timing
    return (f"| {label} | {accuracy:.2f} | {reference - accuracy:+.2f} | {ratio:.2f}x | {int8_ms:.1f} / {float_ms:.1f}"
            f" | {seconds:.0f} |")


def tflite_rows(case: Case, work: Path, threads: int, repeats: int) -> list[str]:
    """The LiteRT float row and one row per selection of :data:`SELECTIONS`."""
    rows, reference = [], None
    for k, groups in enumerate(SELECTIONS):
        start = time.perf_counter()
        recipe = TfliteInt8Recipe(float_groups=groups)
        (work / f"tflite-{k}").mkdir()
        float_file, int8_file = quantize_tflite(case.model, case.options, case.images, work / f"tflite-{k}", recipe)
        seconds = time.perf_counter() - start
        if reference is None:
            reference = file_accuracy(float_file, "litert", case.data, SIZE)
            rows.append(row("LiteRT float", reference, reference, None, 0))
        accuracy = file_accuracy(int8_file, "litert", case.data, SIZE)
        timing = latency_ratio("tflite", float_file, int8_file, case.images, threads, repeats)
        name = "+".join(groups) or "nothing"
        default = " (default)" if recipe == TfliteInt8Recipe() else ""
        rows.append(row(f"LiteRT INT8, float: {name} + tail{default}", accuracy, reference, timing, seconds))
        print(rows[-1], flush=True)
    return rows


def mnn_rows(case: Case, work: Path, threads: int, repeats: int) -> list[str]:
    """MNN's float row and its default INT8 recipe's row."""
    start = time.perf_counter()
    recipe = MnnInt8Recipe()
    (work / "mnn").mkdir()
    float_file, int8_file = quantize_mnn(case.model, case.options, case.images, work / "mnn", recipe)
    seconds = time.perf_counter() - start
    reference = file_accuracy(float_file, "mnn", case.data, SIZE)
    accuracy = file_accuracy(int8_file, "mnn", case.data, SIZE)
    timing = latency_ratio("mnn", float_file, int8_file, case.images, threads, repeats)
    label = f"MNN INT8 ({recipe.method}/{recipe.weight_method}), float: {'+'.join(recipe.float_groups)} + tail"
    return [row("MNN float", reference, reference, None, 0), row(label, accuracy, reference, timing, seconds)]


def run_case(case: Case, work: Path, threads: int, repeats: int) -> None:
    """Measure one dataset and print its table."""
    print(f"\nmeasuring {case.label}: {len(case.images)} calibration images, {len(case.data.records)} scored",
          file=sys.stderr, flush=True)
    work.mkdir(parents=True)
    rows = tflite_rows(case, work, threads, repeats) + mnn_rows(case, work, threads, repeats)
    print(f"\n### {case.label} ({len(case.data.records)} images, {case.metric}), {SIZE[0]}x{SIZE[1]},"
          f" {len(case.images)} calibration images\n")
    print(f"| recipe | {case.metric} | drop vs float | latency vs float | INT8 / float ms | quantise s |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows), flush=True)


def header(threads: int, argv: list[str]) -> str:
    """CPU, versions and the command."""
    found = []
    for dist in VERSIONS:
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    command = " ".join(["python benchmarks/bench_edge_int8.py", *argv])
    return f"CPU: {cpu_features()}; {threads} threads\nversions: {', '.join(found)}\ncommand: {command}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bccd-weights", type=Path, help="yolox-nano checkpoint fine-tuned on BCCD train")
    parser.add_argument("--datasets", nargs="+", choices=("coco", "bccd"), default=["coco", "bccd"])
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="latency comparisons per file (median ratio)")
    args = parser.parse_args(argv)
    if "bccd" in args.datasets and (args.bccd_weights is None or not args.bccd_weights.is_file()):
        print("--bccd-weights: a BCCD checkpoint is needed (see the docstring), or --datasets coco", file=sys.stderr)
        return 2
    missing = [str(p) for p in (COCO, BCCD) if not p.is_dir()]
    if missing:
        print(f"needs {', '.join(missing)} (../shared/data)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    print(header(args.threads, sys.argv[1:] if argv is None else argv), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-edge-int8-") as tmp:
        for name in args.datasets:
            case = coco_case(args.calib_count) if name == "coco" else bccd_case(args.bccd_weights, args.calib_count)
            run_case(case, Path(tmp) / name, args.threads, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
