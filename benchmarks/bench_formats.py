"""Latency of every export format, batch 1, on this machine (issue 28): yolox-nano at 416 and
yolox-s at 640, each file run by the backend yoloxkit runs it with, network only, on one
letterboxed image.

Rows: ONNX (onnxruntime) float and INT8, TorchScript, OpenVINO float (fp32, as yoloxkit runs it),
OpenVINO float at OpenVINO's own default precision (bf16 on a CPU with AMX or AVX-512 BF16) and
INT8, ncnn float and fp16 weights, MNN float and fp16 weights (MNN INT8 is not offered), LiteRT
float, fp16 weights and INT8. The precision column is what each runtime computed in
(``Backend.precision``). The weights are the bundled ones for nano and freshly initialised ones
for s (speed does not depend on them); INT8 files are calibrated on 16 coco-mini train images
(accuracy: docs/deploy.md). Each file is timed in a fresh Python process of its own (the runtimes'
idle thread pools slow each other down when they share a process) with ``OMP_WAIT_POLICY=PASSIVE``,
the environment the ``yoloxkit`` command sets up, and ncnn once more with ``ACTIVE`` (it runs on
torch's OpenMP runtime, which passive waits slow down): the median of ``--iters`` calls after 3
warm-up calls, ``--threads`` threads.

    .venv/bin/python benchmarks/bench_formats.py                 # about 15 minutes
    .venv/bin/python benchmarks/bench_formats.py --models yolox-nano
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import torch

from yoloxkit import Detector
from yoloxkit.benchmarking import cpu_features, time_calls
from yoloxkit.export import ExportOptions, export_model
from yoloxkit.imaging import letterbox_batch
from yoloxkit.models import build_network, get_spec
from yoloxkit.optional import import_openvino
from yoloxkit.packaged import bundled_demo_image
from yoloxkit.quantize.export_int8 import INT8_MIN_OPSET, Int8Settings, export_int8
from yoloxkit.weights import bundled_weights_path, find_format, open_weights

SHARED = Path(__file__).resolve().parents[2] / "shared"
CALIB = SHARED / "data" / "coco-mini" / "train2017"

# (label, format, export changes, int8)
ROWS = [
    ("onnx", "onnx", {}, False),
    ("onnx int8", "onnx", {"opset": INT8_MIN_OPSET}, True),
    ("torchscript", "torchscript", {}, False),
    ("openvino", "openvino", {}, False),
    ("openvino int8", "openvino", {"opset": INT8_MIN_OPSET}, True),
    ("ncnn", "ncnn", {}, False),
    ("ncnn fp16", "ncnn", {"half": True}, False),
    ("mnn", "mnn", {}, False),
    ("mnn fp16", "mnn", {"half": True}, False),
    ("tflite", "tflite", {}, False),
    ("tflite fp16", "tflite", {"half": True}, False),
    ("tflite int8", "tflite", {}, True),
]
VERSIONS = ("torch", "onnxruntime", "openvino", "nncf", "ncnn", "pnnx", "MNN", "ai-edge-litert", "litert-torch",
            "ai-edge-quantizer")


def _model(name: str) -> torch.nn.Module:
    if name == "yolox-nano":
        return open_weights(str(bundled_weights_path()), name).build().model.eval()
    return build_network(name).eval()


def _export(model, label: str, fmt: str, changes: dict, int8: bool, options: ExportOptions, work: Path) -> Path:
    options = dataclasses.replace(options, **changes)
    out = work / label.replace(" ", "-") / f"model{find_format(fmt).output_suffix}"
    if int8:
        return export_int8(model, fmt, out, options, Int8Settings(calib=CALIB, calib_count=16)).path
    return export_model(model, fmt, out, options).path


def _openvino_default(xml: Path, threads: int):
    """The float IR compiled with OpenVINO's own defaults but the thread count: its runner and precision."""
    ov = import_openvino()
    core = ov.Core()
    compiled = core.compile_model(str(xml), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return (lambda images: compiled(images)), f"{precision} (OpenVINO's default)"


def _time(run, batch, iters: int) -> float:
    return 1e3 * float(np.median(time_calls(lambda: run(batch), iters, warmup=3)))


def time_file(path: Path, threads: int, iters: int, openvino_default: bool) -> tuple[str, float]:
    """(precision, median ms) of the exported file at ``path``, network only, in this process."""
    torch.set_num_threads(threads)
    network = Detector(weights=path).network
    size = network.fixed_size or Detector(weights=path).size
    batch, _ = letterbox_batch([cv2.imread(str(bundled_demo_image()))], size)
    if openvino_default:
        run, precision = _openvino_default(path, threads)
        return precision, _time(run, np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32), iters)
    return network.precision, _time(network.infer, batch, iters)


def _time_in_child(path: Path, threads: int, iters: int, openvino_default: bool = False,
                   policy: str = "PASSIVE") -> tuple[str, float]:
    """Time ``path`` in a child process whose OpenMP wait policy is ``policy`` (PASSIVE: the
    environment the ``yoloxkit`` command sets up)."""
    gc.collect()  # the export's own sessions closed, and their spinning threads given time to sleep
    time.sleep(2.0)
    command = [sys.executable, __file__, "--time-file", str(path), "--threads", str(threads), "--iters", str(iters)]
    done = subprocess.run(command + (["--openvino-default"] if openvino_default else []), capture_output=True,
                          text=True, check=True, env=dict(os.environ, OMP_WAIT_POLICY=policy))
    precision, ms = json.loads(done.stdout.strip().splitlines()[-1])
    return precision, float(ms)


def bench(name: str, threads: int, iters: int, work: Path) -> list[tuple[str, str, float]]:
    spec = get_spec(name)
    size = (spec.input_size, spec.input_size) if isinstance(spec.input_size, int) else tuple(spec.input_size)
    model = _model(name)
    options = ExportOptions(size=size, model_name=name, names=None)
    results = []
    for label, fmt, changes, int8 in ROWS:
        path = _export(model, label, fmt, changes, int8, options, work / name)
        timed = [(label, False, "PASSIVE")]
        if label == "openvino":
            timed.append(("openvino, its default precision", True, "PASSIVE"))
        if label == "ncnn":  # ncnn runs on torch's OpenMP runtime, which passive waits slow down
            timed.append(("ncnn, OMP_WAIT_POLICY=ACTIVE", False, "ACTIVE"))
        for row, default, policy in timed:
            precision, ms = _time_in_child(path, threads, iters, default, policy)
            results.append((row, precision, ms))
            print(f"  {name} {row}: {ms:.1f} ms ({precision})", flush=True)
    return results


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["yolox-nano", "yolox-s"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--time-file", type=Path, help=argparse.SUPPRESS)  # the child: time one file
    parser.add_argument("--openvino-default", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_file is not None:
        print(json.dumps(time_file(args.time_file, args.threads, args.iters, args.openvino_default)))
        return 0
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_features()}; {args.threads} threads; Python {platform.python_version()}; "
          + ", ".join(f"{p} {_version(p)}" for p in VERSIONS), flush=True)
    table: dict[str, dict[str, tuple[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as work:
        for name in args.models:
            for label, precision, ms in bench(name, args.threads, args.iters, Path(work)):
                table.setdefault(label, {})[name] = (precision, ms)
    print("\n| format | computes in | " + " | ".join(f"{m} ms | vs onnx" for m in args.models) + " |")
    print("|---|---|" + "---|---|" * len(args.models))
    for label, cells in table.items():
        precision = next(iter(cells.values()))[0]
        parts = []
        for name in args.models:
            ms = cells[name][1]
            parts.append(f"{ms:.1f} | {table['onnx'][name][1] / ms:.2f}x")
        print(f"| {label} | {precision} | " + " | ".join(parts) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
