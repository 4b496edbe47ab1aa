"""End-to-end inference speed: yoloxkit's backends vs the reference ``yolox`` package.

Each path goes from decoded BGR images to final detections in image pixels:

* ``reference eager``: pixeltable-yolox 0.4.3 as its demo runs it: ``preproc`` (letterbox) per
  image, the eager ``YoloxModule``, ``yolox.utils.postprocess``, boxes divided by the ratio;
* ``reference fused``: the same with the reference's own ``fuse_model`` (Conv+BN), for context;
* ``yoloxkit <backend>``: ``Detector.predict_arrays`` (letterbox, network, decode, NMS,
  Detections) on the torch / onnxruntime / openvino backend;
* ``yoloxkit <backend> int8`` (``--int8``): the same on an ``export --int8`` file of the same
  weights, for onnxruntime and openvino (calibrated on coco-mini train2017 when ../shared is there).

All paths use the same weights: the bundled COCO weights for yolox-nano; yolox-s has no trained
weights offline, so it uses a freshly initialised model (identical in every path; its
post-processing sees no boxes above conf 0.25, which favours neither side). The paths are
timed in interleaved rounds (each round runs every path ``--iters`` times, default once) so
that machine load drifts hit all of them alike; the table reports the median, p90 and best call
over all rounds, and the speed-up of each path's median and best call over the reference eager
path's in the same run (on a shared, loaded machine the best call is the steadier estimate).

    .venv/bin/python benchmarks/bench_inference.py                       # CPU, 2 threads
    .venv/bin/python benchmarks/bench_inference.py --device cuda --half \\
        --configs yolox-s:640 --batch 1 32 --backends torch              # a GPU session
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.parity.reference

from yoloxkit.benchmarking import BenchmarkRow, format_table, summarize, time_calls  # noqa: E402

CONF, NMS = 0.25, 0.45


def load_state(model_name: str) -> dict[str, torch.Tensor]:
    """Weights shared by every path (see module doc)."""
    from yoloxkit import build_model
    from yoloxkit.weights import build_model_with_weights

    if model_name == "yolox-nano":
        model, _, _ = build_model_with_weights("yolox-nano")
    else:
        torch.manual_seed(0)
        model = build_model(model_name)
    return {k: v.clone() for k, v in model.state_dict().items()}


def reference_runner(model_name: str, state, size: int, device: torch.device, half: bool, fused: bool):
    """The reference package's eager inference path (its demo's Predictor.inference, batched)."""
    from yolox.data.data_augment import preproc
    from yolox.utils import fuse_model, postprocess

    from tests.parity.reference import build_reference

    model = build_reference(model_name)
    model.load_state_dict(state)
    model.eval()
    if fused:
        model = fuse_model(model)
    model = model.to(device)
    if half:
        model = model.half()
    num_classes = model.head.num_classes

    def run(images: list[np.ndarray]):
        blobs, ratios = zip(*(preproc(img, (size, size)) for img in images))
        tensor = torch.from_numpy(np.stack(blobs)).to(device)
        tensor = tensor.half() if half else tensor.float()
        with torch.no_grad():
            outputs = postprocess(model(tensor), num_classes, CONF, NMS)
        results = []
        for output, ratio in zip(outputs, ratios):
            if output is None:
                results.append(np.zeros((0, 7), np.float32))
                continue
            output = output.float().cpu()
            output[:, :4] /= ratio
            results.append(output.numpy())
        return results

    return run


def yoloxkit_runner(model_name: str, state, size: int, backend: str, device: torch.device, half: bool):
    """``Detector.predict_arrays`` on ``backend`` (``half``: the torch backend in float16 on CUDA)."""
    from yoloxkit import Detector, build_model

    model = build_model(model_name)
    model.load_state_dict(state)
    model.eval()
    detector = Detector.from_model(model, None, size, CONF, NMS, device=str(device), backend=backend,
                                   model_name=model_name, batch_size=64, half=half)
    return detector.predict_arrays


def yoloxkit_int8_runner(model_name: str, state, size: int, backend: str, work: Path):
    """``Detector.predict_arrays`` on an ``export --int8`` file (the default recipe of the
    runtime, dynamic batch) calibrated on coco-mini train2017 (the demo picture without it)."""
    from yoloxkit import Detector, build_model
    from yoloxkit.export import ExportOptions
    from yoloxkit.quantize.export_int8 import Int8Settings, export_int8

    model = build_model(model_name)
    model.load_state_dict(state)
    model.eval()
    calib = REPO.parent / "shared" / "data" / "coco-mini" / "train2017"
    if not calib.is_dir():
        calib = REPO / "src" / "yoloxkit" / "assets"
    fmt = "onnx" if backend == "onnxruntime" else "openvino"
    options = ExportOptions(size=(size, size), dynamic=True, opset=13, model_name=model_name)
    path = work / f"{model_name}-{backend}-int8{'.onnx' if fmt == 'onnx' else '.xml'}"
    export_int8(model, fmt, path, options, Int8Settings(calib=calib))
    detector = Detector(weights=path, backend=backend, size=size, conf=CONF, nms=NMS, batch_size=64)
    return detector.predict_arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["yolox-nano:416", "yolox-s:640"], help="MODEL:SIZE items")
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime", "openvino"])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--half", action="store_true", help="float16 (CUDA only)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--iters", type=int, default=1, help="timed calls per path per round (default 1)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per path first (default 2)")
    parser.add_argument("--no-fused-reference", action="store_true", help="skip the fused reference path")
    parser.add_argument("--image", default=str(REPO / "src" / "yoloxkit" / "assets" / "dog.jpg"))
    parser.add_argument("--int8", action="store_true", help="add INT8 paths (export --int8's default recipe) for the"
                        " onnxruntime and openvino backends among --backends")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    if args.half and device.type != "cuda":
        parser.error("--half needs --device cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    image = cv2.imread(args.image)
    if image is None:
        parser.error(f"cannot read --image {args.image}")

    def synced(fn):
        if device.type != "cuda":
            return fn

        def call(*a):
            out = fn(*a)
            torch.cuda.synchronize()
            return out

        return call

    rows: list[BenchmarkRow] = []
    work = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    for config in args.configs:
        model_name, size = config.split(":")[0], int(config.split(":")[1])
        state = load_state(model_name)
        paths = {"reference eager": reference_runner(model_name, state, size, device, args.half, fused=False)}
        if not args.no_fused_reference:
            paths["reference fused"] = reference_runner(model_name, state, size, device, args.half, fused=True)
        for backend in args.backends:
            paths[f"yoloxkit {backend}"] = yoloxkit_runner(model_name, state, size, backend, device, args.half)
            if args.int8 and backend in ("onnxruntime", "openvino"):
                paths[f"yoloxkit {backend} int8"] = yoloxkit_int8_runner(model_name, state, size, backend, work)
        for batch_size in args.batch:
            images = [image] * batch_size
            calls = {label: synced(fn) for label, fn in paths.items()}
            samples: dict[str, list[float]] = {label: [] for label in calls}
            for label, fn in calls.items():
                time_calls(lambda: fn(images), 0, args.warmup)
            for _ in range(args.rounds):
                for label, fn in calls.items():
                    samples[label].extend(time_calls(lambda: fn(images), args.iters).tolist())
            baseline = summarize(samples["reference eager"], batch_size)
            for label in calls:
                stats = summarize(samples[label], batch_size)
                rows.append(BenchmarkRow(label, model_name, size, batch_size, stats, None, baseline))
            print(format_table(rows[-len(calls):]), flush=True)

    versions = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for module in ("onnxruntime", "openvino", "yolox"):
        try:
            mod = __import__(module)
            versions.append(f"{module} {getattr(mod, '__version__', '?')}")
        except ImportError:
            pass
    print()
    print(f"device {args.device}{' fp16' if args.half else ''}, {args.threads} threads, {platform.machine()},"
          f" {torch.get_num_threads()} torch threads; " + ", ".join(versions))
    print(format_table(rows))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
