"""``yoloxkit benchmark``: latency (median, p90) and throughput per backend, end to end and
network only."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .argtypes import WEIGHTS_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "benchmark",
        help="measure inference latency and throughput per backend",
        description=(
            "Time the detector from a decoded image to detections (letterbox, network, decode, NMS or the top-k"
            " of NMS-free -e2e models) and the"
            " network alone, for each backend; prints median and p90 latency per batch and images per second."
            " Uses the bundled demo picture unless --image is given. --int8 adds an INT8 row after the float row of"
            " each onnxruntime and openvino backend, with its speed-up over that float row. The table says the precision"
            " each backend computed in (OpenVINO runs float files in fp32 here, although on a CPU with AMX its own"
            " default is bf16), and the line above it names the CPU's features (AVX-512 VNNI, AMX)."
        ),
    )
    p.add_argument("--model", help="model name (default: the one --weights names or stores, else yolox-nano)")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--random-init", action="store_true", help="time freshly initialised weights (no download)")
    p.add_argument("--size", type=int, help="input size (default: the size the weights store, else the model's)")
    p.add_argument("--backend", nargs="+", default=None,
                   help="backends to time (default: torch onnxruntime; for an exported file, the one that runs it)")
    p.add_argument("--batch-size", type=int, default=1, help="images per call (default 1)")
    p.add_argument("--iters", type=int, default=20, help="timed calls per backend (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--image", help="image to run on (default: the bundled demo picture)")
    p.add_argument("--int8", action="store_true", help="also time an INT8 export of the model (export --int8's"
                   " default recipe) on the onnxruntime and openvino backends, each against its float row")
    p.add_argument("--calib", metavar="DIR", help="--int8 calibration images (default: the demo picture; speed does"
                   " not depend on them, accuracy does: see export --int8)")
    p.set_defaults(func=run)


def _exported(args: argparse.Namespace) -> bool:
    """Whether --weights is an export (run as is in its runtime), not a checkpoint or zoo name."""
    from ..weights import format_of

    return args.weights is not None and not args.random_init and format_of(args.weights).runs_as_is


def _backends(args: argparse.Namespace) -> list[str]:
    """The backends to time, checked: --backend, else the one an exported file runs in, else
    torch and onnxruntime; and the counts and --int8 checked with them."""
    from ..errors import InferenceError
    from ..infer.backends import backend_names
    from ..infer.loading import choose_backend

    for flag, value in (("--batch-size", args.batch_size), ("--iters", args.iters), ("--threads", args.threads or 1)):
        if value < 1:
            raise InferenceError(f"{flag} must be >= 1, got {value}")
    if args.warmup < 0:
        raise InferenceError(f"--warmup must be >= 0, got {args.warmup}")
    backends = args.backend
    if backends is None:
        backends = [choose_backend(None, args.weights)] if _exported(args) else ["torch", "onnxruntime"]
    unknown = [b for b in backends if b.lower() not in backend_names()]
    if unknown:
        raise InferenceError(f"unknown backend {unknown[0]!r}; choose from: {', '.join(backend_names())}")
    return backends


def _check_int8(args: argparse.Namespace, backends: list[str]) -> None:
    from ..errors import InferenceError

    if args.int8 and not any(b.lower() in INT8_BACKENDS for b in backends):
        raise InferenceError(f"--int8 times the {' and '.join(INT8_BACKENDS)} backends; add one with --backend")
    if args.int8 and _exported(args):
        raise InferenceError(f"--int8 quantises a checkpoint or zoo model; {args.weights} is already an export")


def _detector(args: argparse.Namespace, backend: str):
    """The detector timed for ``backend``: freshly initialised (--random-init), else --model,
    else the one --weights names or stores, else yolox-nano."""
    from ..infer import Detector
    from ..models import build_network, get_spec

    if args.random_init:
        spec = get_spec(args.model or "yolox-nano")
        model = build_network(spec.name).eval()
        return Detector.from_model(model, None, args.size or spec.input_size, device=args.device, backend=backend,
                                   model_name=spec.name), model
    return Detector(args.model, weights=args.weights, size=args.size, device=args.device, backend=backend), None


def run(args: argparse.Namespace) -> int:
    import torch

    from ..benchmarking import BenchmarkRow, cpu_features, detector_timers, format_table, summarize, time_calls
    from ..imaging import load_images
    from ..infer import Detector
    from ..infer.loading import DEFAULT_MODEL
    from ..packaged import bundled_demo_image
    from ..weights import open_weights

    backends = _backends(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    _check_int8(args, backends)
    arrays, _ = load_images([args.image or str(bundled_demo_image())])
    images = arrays * args.batch_size

    def measure(detector, label: str, baseline=None) -> BenchmarkRow:
        print(detector.describe(), flush=True)
        detector.batch_size = max(detector.batch_size, args.batch_size)
        end_to_end, network = detector_timers(detector, images)
        e2e = summarize(time_calls(end_to_end, args.iters, args.warmup), args.batch_size)
        net = summarize(time_calls(network, args.iters, args.warmup), args.batch_size)
        return BenchmarkRow(label, detector.model_name, detector.size[0], args.batch_size, e2e, net, baseline,
                            precision=detector.network.precision)

    # --int8 quantises the PyTorch model of the weights (random-init builds its own per backend);
    # like the Detector, no --model and no --weights means the default model
    model = None
    if args.int8 and not args.random_init:
        model = open_weights(args.weights, args.model or (None if args.weights else DEFAULT_MODEL)).build().model
    rows = []
    with tempfile.TemporaryDirectory(prefix="yoloxkit-benchmark-") as work:
        for backend in backends:
            detector, fresh = _detector(args, backend)
            model = fresh if fresh is not None else model
            rows.append(measure(detector, backend))
            if args.int8 and backend.lower() in INT8_BACKENDS:
                path = _int8_file(model, detector, backend.lower(), args, Path(work))
                int8 = Detector(weights=path, backend=backend, device=args.device)
                rows.append(measure(int8, f"{backend} int8", baseline=rows[-1].end_to_end))
    print(f"{torch.get_num_threads()} threads, device {args.device}; CPU: {cpu_features()}")
    print(format_table(rows))
    return 0


INT8_BACKENDS = ("onnxruntime", "openvino")


def _int8_file(model, detector, backend: str, args: argparse.Namespace, work: Path) -> Path:
    """An INT8 export (the default recipe) of ``model`` at the detector's size and batch, in ``work``."""
    from ..export import ExportOptions
    from ..packaged import bundled_demo_image
    from ..quantize.export_int8 import INT8_MIN_OPSET, Int8Settings, export_int8

    from ..weights import find_format

    fmt = "onnx" if backend == "onnxruntime" else "openvino"
    options = ExportOptions(size=detector.size, batch=args.batch_size, opset=INT8_MIN_OPSET,
                            names=tuple(detector.names), model_name=detector.model_name)
    calib = args.calib or bundled_demo_image().parent
    path = work / f"{backend}-int8{find_format(fmt).output_suffix}"
    result = export_int8(model, fmt, path, options, Int8Settings(calib=calib))
    print(result.summary(), flush=True)
    return result.path
