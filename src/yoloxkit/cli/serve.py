"""``yoloxkit serve``: an HTTP detection service with micro-batching and a web page."""

from __future__ import annotations

import argparse
import sys

from ..errors import MissingDependencyError
from ..packaged import BUNDLED_MODEL
from .argtypes import (
    WEIGHTS_HELP, add_slice_options, non_negative_float, port, positive_float, positive_int, slice_options, unit_float,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a detector over HTTP (REST API + web page)",
        description="Serve a detector over HTTP: POST /v1/detect (multipart field 'file'), GET /v1/model, "
        "GET /healthz, the OpenAPI schema at /openapi.json and a web page at /. Requests arriving together "
        "are micro-batched into one forward pass. --slice sets the default sliced inference; a request sets its own "
        "with the slice, slice_overlap and slice_full parameters (slice=off: the whole image). "
        "Ctrl-C or SIGTERM finishes in-flight requests, then exits.",
    )
    p.add_argument("--model", help=f"model name (default: the one --weights names or stores, else {BUNDLED_MODEL} "
                   "with its bundled COCO weights)")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--backend", choices=("torch", "onnxruntime", "openvino"), default=None,
                   help="inference backend (default: the one that runs --weights as is: torch for .pth and"
                   " TorchScript, onnxruntime for .onnx, openvino for .xml)")
    p.add_argument("--size", type=positive_int, help="input size (default: the size the weights store, i.e. the"
                   " training or export size, else the model's, 416 or 640)")
    p.add_argument("--device", help="cpu or cuda (default cpu)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port to bind (default 8000; 0 picks a free one)")
    p.add_argument("--max-batch", type=positive_int, default=8,
                   help="most requests run in one forward pass (default 8; 1 turns micro-batching off)")
    p.add_argument("--max-wait-ms", type=non_negative_float, default=5.0,
                   help="longest a request waits for others to share its batch (default 5)")
    p.add_argument("--max-queue", type=positive_int, default=64,
                   help="requests allowed to wait; beyond it the server answers 503 with Retry-After (default 64)")
    p.add_argument("--max-queued-mb", type=positive_float, default=1024.0,
                   help="decoded pixels allowed to wait, in MiB; beyond it 503 as for a full queue (default 1024)")
    p.add_argument("--max-upload-mb", type=positive_float, default=20.0,
                   help="largest accepted upload in MiB (default 20; larger gets 413)")
    p.add_argument("--max-pixels", type=positive_int, default=40_000_000,
                   help="largest accepted image, width x height (default 40000000; larger gets 413)")
    p.add_argument("--conf", type=unit_float, default=0.25, help="default confidence threshold (default 0.25)")
    p.add_argument("--nms", type=unit_float, help="default NMS IoU threshold (default 0.45; ignored by NMS-free"
                   " -e2e models)")
    p.add_argument("--nms-free", action=argparse.BooleanOptionalAction, default=None,
                   help="top-k without NMS (default: for end-to-end -e2e models); --no-nms-free: NMS on any model")
    add_slice_options(p)
    p.add_argument("--max-tiles", type=positive_int, default=256,
                   help="most crops a sliced request may cut its image into (tiles, plus the whole image with"
                   " slice_full); more gets 422 (default 256)")
    p.add_argument("--graceful-timeout", type=positive_float, default=30.0,
                   help="seconds to finish in-flight requests on shutdown (default 30)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="server log level (default info)")
    p.set_defaults(func=run)


def build_detector(args: argparse.Namespace):
    """The :class:`yoloxkit.Detector` the arguments describe."""
    from ..infer import Detector

    options = {"weights": args.weights, "size": args.size, "conf": args.conf, "nms": args.nms,
               "device": args.device, "backend": args.backend, "nms_free": getattr(args, "nms_free", None)}
    options = {key: value for key, value in options.items() if value is not None}
    # Without --model the model is the one --weights names or stores (the Detector's default: nano).
    return Detector(args.model, **options, **slice_options(args))


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(
            f"serve needs fastapi, uvicorn and python-multipart ({exc.name} is missing): "
            "pip install 'yoloxkit[serve]'"
        ) from None
    from ..serve.limits import UploadLimits

    detector = build_detector(args)
    print(detector.describe(), file=sys.stderr, flush=True)
    limits = UploadLimits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels)
    app = create_app(
        detector,
        conf=args.conf,
        nms=args.nms,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        max_queued_mb=args.max_queued_mb,
        limits=limits,
        max_tiles=args.max_tiles,
    )
    print(
        f"serving {detector.model_name} ({detector.backend}) on http://{args.host}:{args.port}/ "
        f"max-batch {args.max_batch}, max-wait {args.max_wait_ms:g} ms, queue {args.max_queue}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=args.graceful_timeout,
        access_log=args.log_level == "debug",
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        app.state.batcher.close(drain=True, timeout=args.graceful_timeout)
    return 0
