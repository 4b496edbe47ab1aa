"""FastAPI application serving a :class:`yoloxkit.Detector` over HTTP.

Routes: ``POST /v1/detect`` (multipart field ``file``; options as query parameters, the slice
options also as form fields), ``GET /v1/model``, ``GET /healthz``,
the web page at ``/`` with its files under ``/static``, and the OpenAPI schema at
``/openapi.json``. Errors are JSON ``{"detail": "one line"}`` with a 4xx/5xx status. The server
never fetches URLs: images arrive only as uploads. One request never fails another: the batcher
re-runs a failed batch one request at a time (:mod:`.batcher`), so only the image that fails on
its own gets an error; an upload slower than ``read_timeout_s`` gets 408 (:mod:`.body_limit`).

The app is assembled from one router per concern (:mod:`.routes`), one
:class:`~.settings.ServiceSettings` and the :class:`~.service.Service` the routes share.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .._version import __version__
from .body_limit import BodySizeLimit
from .detect import DetectorLike
from .routes import detect, page, service
from .routes.detect import requested_class_ids
from .routes.page import STATIC_DIR
from .service import Service
from .settings import ServiceSettings

__all__ = ["create_app", "requested_class_ids", "validation_detail", "STATIC_DIR", "ServiceSettings"]

# Multipart framing around the file (boundaries, part headers, the query-less form fields).
MULTIPART_SLACK_BYTES = 64 * 1024


def validation_detail(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line naming each parameter: ``conf: Input should be
    less than or equal to 1 (got '1.5')``."""
    parts = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("query", "body")]
        text = f"{'.'.join(loc) or 'request'}: {error.get('msg', 'invalid value')}"
        if "input" in error and error["input"] is not None and not isinstance(error["input"], (dict, list)):
            shown = repr(error["input"])
            text += f" (got {shown[:40] + '...' if len(shown) > 40 else shown})"
        parts.append(text)
    return "; ".join(parts) or "invalid request"


async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)


async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)


@asynccontextmanager
async def _lifespan(app: FastAPI):
    if app.state.batcher.closed:  # the app is started again after a shutdown
        app.state.batcher = app.state.service.new_batcher()
    yield
    # uvicorn has already waited for in-flight requests; finish anything still queued.
    await asyncio.to_thread(app.state.batcher.close, True)


def create_app(detector: DetectorLike, *, settings: ServiceSettings | None = None, **options: Any) -> FastAPI:
    """Build the app around ``detector``; its micro-batching worker starts now and is drained on shutdown.

    ``settings`` (or its fields as keywords: ``conf``, ``nms``, ``max_batch``, ``max_wait_ms``,
    ``max_queue``, ``max_queued_mb``, ``decode_workers``, ``limits``, ``retry_after_s``,
    ``max_tiles``, ``read_timeout_s``) are the service's options, see :class:`~.settings.ServiceSettings`.
    ``conf``/``nms`` are the defaults for requests that do not set them (default: the detector's).
    Memory stays bounded: at most ``decode_workers`` uploads are decoded at once, and waiting
    requests hold at most ``max_queue`` images and ``max_queued_mb`` MiB of decoded pixels.
    Requests are sliced as the detector's ``slicing`` says unless they set their own; a sliced
    request may cut its image into at most ``max_tiles`` crops (see :mod:`.options`).
    """
    if settings is not None and options:
        raise TypeError(f"create_app takes settings= or its fields, not both (got {', '.join(options)})")
    served = Service(detector, settings if settings is not None else ServiceSettings(**options))
    app = FastAPI(
        title="yoloxkit",
        summary="YOLOX object detection over HTTP",
        version=__version__,
        lifespan=_lifespan,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN: off, the schema stays.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = served
    # Started now so that the app also works without lifespan events (e.g. httpx.ASGITransport).
    app.state.batcher = served.new_batcher()
    app.state.detector = detector
    app.state.limits = served.settings.limits
    app.state.received = 0
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for router in (service.router, detect.router, page.router):
        app.include_router(router)
    page.mount_static(app)
    app.add_middleware(BodySizeLimit, max_bytes=served.settings.limits.max_upload_bytes + MULTIPART_SLACK_BYTES,
                       read_timeout_s=served.settings.read_timeout_s)
    return app
