"""``yoloxkit serve``: an HTTP detection service with micro-batching and a web page."""

from __future__ import annotations

import argparse
import sys

from ..errors import MissingDependencyError
from ..infer.backends import backend_names
from ..infer.defaults import DEFAULT_CONF
from ..packaged import BUNDLED_MODEL
from ..imaging.decode import MAX_PIXELS_ENV
from ..serve.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, UploadLimits
from ..serve.settings import ServiceSettings
from .argtypes import (
    WEIGHTS_HELP, add_slice_options, non_negative_float, port, positive_float, positive_int, unit_float,
)
from .detector_options import BACKEND_HELP, NMS_FREE_HELP, NMS_HELP, build_detector

__all__ = ["register", "build_detector", "run"]

#: the service's defaults, which the flags' defaults and help texts show
SERVICE = ServiceSettings()


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
    p.add_argument("--backend", choices=backend_names(), default=None, help=BACKEND_HELP)
    p.add_argument("--size", type=positive_int, help="input size (default: the size the weights store, i.e. the"
                   " training or export size, else the model's, 416 or 640)")
    p.add_argument("--device", help="cpu or cuda (default cpu)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port to bind (default 8000; 0 picks a free one)")
    p.add_argument("--max-batch", type=positive_int, default=SERVICE.max_batch,
                   help=f"most requests run in one forward pass (default {SERVICE.max_batch}; 1 turns micro-batching"
                   " off)")
    p.add_argument("--max-wait-ms", type=non_negative_float, default=SERVICE.max_wait_ms,
                   help=f"longest a request waits for others to share its batch (default {SERVICE.max_wait_ms:g})")
    p.add_argument("--max-queue", type=positive_int, default=SERVICE.max_queue,
                   help="requests allowed to wait; beyond it the server answers 503 with Retry-After"
                   f" (default {SERVICE.max_queue})")
    p.add_argument("--max-queued-mb", type=positive_float, default=SERVICE.max_queued_mb,
                   help="decoded pixels allowed to wait, in MiB; beyond it 503 as for a full queue"
                   f" (default {SERVICE.max_queued_mb:g})")
    p.add_argument("--max-upload-mb", type=positive_float, default=DEFAULT_MAX_UPLOAD_MB,
                   help=f"largest accepted upload in MiB (default {DEFAULT_MAX_UPLOAD_MB:g}; larger gets 413)")
    p.add_argument("--max-pixels", type=positive_int, default=None,
                   help="largest accepted image, width x height; larger gets 413 (default: the limit of every"
                   f" command, ${MAX_PIXELS_ENV} if set, else {DEFAULT_MAX_PIXELS}, Pillow's decompression-bomb limit)")
    p.add_argument("--conf", type=unit_float, default=DEFAULT_CONF,
                   help=f"default confidence threshold (default {DEFAULT_CONF})")
    p.add_argument("--nms", type=unit_float, help=f"default {NMS_HELP}")
    p.add_argument("--nms-free", action=argparse.BooleanOptionalAction, default=None, help=NMS_FREE_HELP)
    add_slice_options(p)
    p.add_argument("--max-tiles", type=positive_int, default=SERVICE.max_tiles,
                   help="most crops a sliced request may cut its image into (tiles, plus the whole image with"
                   f" slice_full); more gets 422 (default {SERVICE.max_tiles})")
    p.add_argument("--read-timeout", type=positive_float, default=SERVICE.read_timeout_s, metavar="SECONDS",
                   help="most seconds an upload may take to arrive after its headers; a slower or stalled client"
                   f" gets 408 and its connection closed (default {SERVICE.read_timeout_s:g})")
    p.add_argument("--graceful-timeout", type=positive_float, default=30.0,
                   help="seconds to finish in-flight requests on shutdown (default 30)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="server log level (default info)")
    p.set_defaults(func=run)


def _log_config(level: str) -> dict:
    """uvicorn's logging, with the service's own lines (a failed request, a timed-out upload) on
    its handler, at ``level``."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["yoloxkit.serve"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(
            f"serve needs fastapi, uvicorn and python-multipart ({exc.name} is missing): "
            "pip install 'yoloxkit[serve]'"
        ) from None

    detector = build_detector(args)
    print(detector.describe(), file=sys.stderr, flush=True)
    limits = UploadLimits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels)
    settings = ServiceSettings(conf=args.conf, nms=args.nms, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                               max_queue=args.max_queue, max_queued_mb=args.max_queued_mb, limits=limits,
                               max_tiles=args.max_tiles, read_timeout_s=args.read_timeout)
    app = create_app(detector, settings=settings)
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
        log_config=_log_config(args.log_level),
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        app.state.batcher.close(drain=True, timeout=args.graceful_timeout)
    return 0
