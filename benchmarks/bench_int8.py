"""INT8 post-training quantisation: accuracy and speed of every recipe tried, against float in the
same runtime, on this machine.

* ``accuracy``: the bundled yolox-nano at 416 (batch 1, static shape), calibrated on
  ``../shared/data/coco-mini/train2017`` and scored on its val2017 (COCO AP, the official
  thresholds 0.01 / 0.65). onnxruntime recipes: calibration method x layer groups kept in float
  x quantised operator types; OpenVINO recipes: NNCF preset x layer groups kept in float. Each
  row gives the AP, the drop against float in that runtime, and the network's median latency.
* ``speed``: yolox-s at 640 with freshly initialised weights (speed does not depend on them),
  float against the default INT8 recipe of each runtime, and yolox-nano at 416 again.

Every latency is the network alone on one letterboxed image ([1,3,H,W] float32), ``--threads``
(default 2) intra-op threads, median over ``--iters`` calls after a warm-up, float and INT8
interleaved in rounds so that machine load hits both alike.

    .venv/bin/python benchmarks/bench_int8.py                  # both parts (about 10 minutes)
    .venv/bin/python benchmarks/bench_int8.py --part speed
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from yoloxkit import build_model
from yoloxkit.benchmarking import time_calls
from yoloxkit.data import load_dataset
from yoloxkit.export import ExportOptions
from yoloxkit.export.graph import export_module
from yoloxkit.export.onnx import write_onnx
from yoloxkit.export.verify import sample_input
from yoloxkit.quantize import OnnxInt8Recipe, OpenVinoInt8Recipe, calibration_inputs, calibration_files
from yoloxkit.quantize import quantize_onnx, quantize_openvino
from yoloxkit.quantize.accuracy import file_accuracy
from yoloxkit.quantize.compare import file_runner
from yoloxkit.weights import build_model_with_weights

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "coco-mini"

CONV = ("Conv",)
ONNX_RECIPES = [
    # Conv only: every method, with nothing / stem+dark2 / stem+dark2+preds kept in float
    *(OnnxInt8Recipe(method=m, float_groups=g, op_types=CONV)
      for g in ((), ("stem", "dark2"), ("stem", "dark2", "preds")) for m in ("minmax", "entropy", "percentile")),
    OnnxInt8Recipe(method="entropy", op_types=CONV, activations="int8"),
    # every op type onnxruntime quantises (SiLU's Sigmoid and Mul, Add, Concat, Resize, ...)
    *(OnnxInt8Recipe(method=m) for m in ("minmax", "entropy", "percentile")),
    OnnxInt8Recipe(method="entropy", float_groups=("stem", "dark2")),
]
OPENVINO_RECIPES = [
    OpenVinoInt8Recipe(preset="performance"),
    OpenVinoInt8Recipe(preset="mixed"),
    OpenVinoInt8Recipe(preset="mixed", float_groups=("preds",)),
    OpenVinoInt8Recipe(preset="mixed", float_groups=("stem",)),
]


def cpu_flags() -> str:
    """The SIMD flags that decide INT8 speed (VNNI: int8 dot products)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"]
    return " ".join(f for f in wanted if f in flags) or "none of " + " ".join(wanted)


def cpu_name() -> str:
    try:
        match = re.search(r"^model name\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
        return match.group(1).strip() if match else platform.processor()
    except OSError:
        return platform.processor()


class Runner:
    """One file in one runtime, on one input, for timing."""

    def __init__(self, runtime: str, path: Path, image: np.ndarray, threads: int) -> None:
        run = file_runner("onnx" if runtime == "onnxruntime" else "openvino", path, threads)
        self.call = lambda: run(image)


def interleaved_ms(runners: dict[str, Runner], iters: int, rounds: int = 5) -> dict[str, float]:
    """Median ms per call of each runner, timed in interleaved rounds."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    for runner in runners.values():
        time_calls(runner.call, 3)
    for _ in range(rounds):
        for key, runner in runners.items():
            times[key].extend(time_calls(runner.call, max(1, iters // rounds)))
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def float_onnx(model, name: str, size: int, path: Path) -> Path:
    options = ExportOptions(size=(size, size), opset=13, model_name=name)
    write_onnx(export_module(model, options), sample_input((size, size)), path, options)
    return path


def quantized(runtime: str, recipe, float_path: Path, images: np.ndarray, out: Path) -> Path:
    if runtime == "onnxruntime":
        quantize_onnx(float_path, out.with_suffix(".onnx"), images, recipe)
        return out.with_suffix(".onnx")
    import openvino as ov

    ov.save_model(quantize_openvino(float_path, images, recipe), str(out.with_suffix(".xml")), compress_to_fp16=False)
    return out.with_suffix(".xml")


def accuracy_part(work: Path, calib_count: int, threads: int, iters: int) -> None:
    model, _, _ = build_model_with_weights("yolox-nano")
    size = 416
    float_path = float_onnx(model, "yolox-nano", size, work / "nano-float.onnx")
    images, _ = calibration_inputs(calibration_files(DATA / "train2017", calib_count), (size, size))
    val = load_dataset(DATA, split="val2017")
    image = images[:1]
    print(f"\n### Accuracy: yolox-nano at {size}, bundled weights, coco-mini val2017 ({len(val.records)} images),"
          f" calibrated on {len(images)} train2017 images\n")
    print("| runtime | recipe | AP | drop vs float | ms (median) | float ms | speed-up | quantise s |")
    print("|---|---|---|---|---|---|---|---|")
    for runtime, recipes in (("onnxruntime", ONNX_RECIPES), ("openvino", OPENVINO_RECIPES)):
        float_ap = file_accuracy(float_path, runtime, val, (size, size))
        print(f"| {runtime} | float | {float_ap:.2f} | | | | | |", flush=True)
        for k, recipe in enumerate(recipes):
            start = time.perf_counter()
            path = quantized(runtime, recipe, float_path, images, work / f"nano-{runtime}-{k}")
            seconds = time.perf_counter() - start
            ap = file_accuracy(path, runtime, val, (size, size))
            ms = interleaved_ms({"float": Runner(runtime, float_path, image, threads),
                                 "int8": Runner(runtime, path, image, threads)}, iters)
            label = recipe.describe()
            label += f", {recipe.activations} activations" if runtime == "onnxruntime" else ""
            print(f"| {runtime} | {label} | {ap:.2f} | {float_ap - ap:+.2f} | {ms['int8']:.1f} | {ms['float']:.1f} |"
                  f" {ms['float'] / ms['int8']:.2f}x | {seconds:.0f} |", flush=True)


def speed_part(work: Path, calib_count: int, threads: int, iters: int) -> None:
    print("\n### Speed: float against the default INT8 recipe, same runtime, batch 1\n")
    print("| model | size | runtime | recipe | float ms | int8 ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name, size in (("yolox-s", 640), ("yolox-nano", 416)):
        if name == "yolox-nano":
            model, _, _ = build_model_with_weights(name)
        else:
            torch.manual_seed(0)
            model = build_model(name).eval()
        float_path = float_onnx(model, name, size, work / f"{name}-float.onnx")
        images, _ = calibration_inputs(calibration_files(DATA / "train2017", calib_count), (size, size))
        for runtime, recipe in (("onnxruntime", OnnxInt8Recipe()), ("openvino", OpenVinoInt8Recipe()),
                                ("onnxruntime", OnnxInt8Recipe(method="entropy", op_types=CONV)),
                                ("onnxruntime", OnnxInt8Recipe(method="entropy", float_groups=("preds",), op_types=CONV))):
            path = quantized(runtime, recipe, float_path, images, work / f"{name}-{runtime}-int8")
            ms = interleaved_ms({"float": Runner(runtime, float_path, images[:1], threads),
                                 "int8": Runner(runtime, path, images[:1], threads)}, iters)
            print(f"| {name} | {size} | {runtime} | {recipe.describe()} | {ms['float']:.1f} | {ms['int8']:.1f} |"
                  f" {ms['float'] / ms['int8']:.2f}x |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("accuracy", "speed", "all"), default="all")
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=40)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"needs {DATA} (../shared/data/coco-mini)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    import onnxruntime
    import openvino

    print(f"CPU: {cpu_name()}, {args.threads} threads; flags: {cpu_flags()}")
    print(f"onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("accuracy", "all"):
            accuracy_part(Path(tmp), args.calib_count, args.threads, args.iters)
        if args.part in ("speed", "all"):
            speed_part(Path(tmp), args.calib_count, args.threads, args.iters)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
