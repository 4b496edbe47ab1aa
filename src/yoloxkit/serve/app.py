"""FastAPI application serving a :class:`yoloxkit.Detector` over HTTP.

Routes: ``POST /v1/detect`` (multipart field ``file``; options as query parameters, the slice
options also as form fields), ``GET /v1/model``, ``GET /healthz``,
the web page at ``/`` with its files under ``/static``, and the OpenAPI schema at
``/openapi.json``. Errors are JSON ``{"detail": "one line"}`` with a 4xx/5xx status. The server
never fetches URLs: images arrive only as uploads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from time import perf_counter
from typing import Any, Optional, Sequence

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from .._version import __version__
from ..errors import InferenceError
from ..infer.classes import UnknownClassError, class_ids, split_names
from ..infer.slicing import Slicing
from .batcher import BatcherClosedError, MicroBatcher, QueueFullError
from .detect import DetectJob, DetectorLike, run_jobs
from .body_limit import BodySizeLimit
from .limits import ACCEPTED_FORMATS, UploadLimits, UploadRejected, decode_upload
from .options import SLICE_OFF, check_slicing, detector_slicing, effective_slicing, request_slicing

__all__ = ["create_app", "requested_class_ids", "validation_detail", "STATIC_DIR"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Multipart framing around the file (boundaries, part headers, the query-less form fields).
MULTIPART_SLACK_BYTES = 64 * 1024
SLICE_HELP = (
    f"sliced inference for small objects: tiles of H or HxW image pixels (height x width), or {SLICE_OFF!r} "
    "for the whole image (default: the server's --slice)"
)
OVERLAP_HELP = "fraction of a tile shared with its neighbour, in (0, 1) (default: the server's, else 0.2)"
FULL_HELP = "also run the whole image, for objects larger than a tile (default: the server's)"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class Detection(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in image pixels", min_length=4, max_length=4)
    score: float = Field(description="objectness x class probability")
    class_id: int
    name: str


class Timing(BaseModel):
    queue_ms: float = Field(description="time waiting for a batch")
    inference_ms: float = Field(description="time of the batched forward pass and post-processing")
    total_ms: float = Field(description="time in the server, upload parsing and decoding included")
    batch_size: int = Field(description="requests that shared the forward pass")


class DetectResponse(BaseModel):
    image: Optional[str] = Field(description="uploaded file name")
    width: int
    height: int
    detections: list[Detection]
    timing: Timing
    model: str


class SlicingInfo(BaseModel):
    height: int = Field(description="tile height in image pixels")
    width: int = Field(description="tile width in image pixels")
    overlap: float = Field(description="fraction of a tile shared with its neighbour")
    full: bool = Field(description="the whole image runs too")
    merge: str = Field(description="how tiles' boxes are merged: nmm or nms")
    match: str = Field(description="box overlap metric of the merge: ios or iou")
    threshold: float = Field(description="overlap above which two boxes merge")


class ModelInfo(BaseModel):
    name: str
    backend: str
    classes: list[str]
    num_classes: int
    input_size: list[int] = Field(description="model input height, width")
    conf: float = Field(description="default confidence threshold")
    nms: float = Field(description="default NMS IoU threshold")
    nms_free: bool = Field(description="post-processing keeps the top detections without NMS (nms is ignored)")
    precision: str = Field(description="what the network computes in: float32, float16 or int8")
    slicing: Optional[SlicingInfo] = Field(description="default sliced inference; null: whole images")
    max_tiles: int = Field(description="most crops a sliced request may cut its image into")
    max_batch: int
    max_wait_ms: float
    max_queue: int
    max_upload_bytes: int
    max_pixels: int
    accepted_formats: list[str]


class Health(BaseModel):
    status: str
    model: str
    queued: int = Field(description="detection requests waiting for a batch")
    received: int = Field(description="detection requests received since start")
    served: int = Field(description="detection requests answered by the model since start")


class ErrorBody(BaseModel):
    detail: Any


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Empty, truncated or corrupt image"},
    413: {"model": ErrorBody, "description": "Upload or image pixel count over the limit"},
    415: {"model": ErrorBody, "description": "Not an image in an accepted format"},
    422: {"model": ErrorBody, "description": "Invalid option, unknown class name, or slice that does not fit"},
    503: {"model": ErrorBody, "description": "Queue full or shutting down; see Retry-After"},
}


def requested_class_ids(value: str | None, names: list[str]) -> frozenset[int] | None:
    """The ``classes`` query (comma-separated class names, any case) as class ids; ``None``: no
    filter. Unknown names raise :class:`~yoloxkit.infer.classes.UnknownClassError`."""
    wanted = split_names([value] if value else [])
    if not wanted:
        return None
    return frozenset(class_ids(wanted, names, ids=False, ignore_case=True))


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


def _either(name: str, query: Any, form: Any) -> Any:
    """A slice option given as a query parameter or a form field; 422 when both disagree."""
    if query is not None and form is not None and query != form:
        raise HTTPException(422, f"{name}: the query parameter ({query!r}) and the form field ({form!r}) differ")
    return query if query is not None else form


def _upload_name(upload: UploadFile) -> str | None:
    if not upload.filename:
        return None
    return os.path.basename(upload.filename.replace("\\", "/"))[:255] or None


def create_app(
    detector: DetectorLike,
    *,
    conf: float | None = None,
    nms: float | None = None,
    max_batch: int = 8,
    max_wait_ms: float = 5.0,
    max_queue: int = 64,
    max_queued_mb: float = 1024.0,
    decode_workers: int = 4,
    limits: UploadLimits = UploadLimits(),
    retry_after_s: int = 1,
    max_tiles: int = 256,
) -> FastAPI:
    """Build the app around ``detector``; its micro-batching worker starts now and is drained on shutdown.

    ``conf``/``nms`` are the defaults for requests that do not set them (default: the detector's).
    Memory stays bounded: at most ``decode_workers`` uploads are decoded at once, and waiting
    requests hold at most ``max_queue`` images and ``max_queued_mb`` MiB of decoded pixels.
    Requests are sliced as the detector's ``slicing`` says unless they set their own; a sliced
    request may cut its image into at most ``max_tiles`` crops (see :mod:`.options`).
    """
    if decode_workers < 1:
        raise ValueError(f"decode_workers must be >= 1, got {decode_workers}")
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be >= 1, got {max_tiles}")
    default_slicing = detector_slicing(detector)
    can_slice = hasattr(detector, "slicing")  # a detector that takes slicing= (yoloxkit.Detector does)
    conf = float(getattr(detector, "conf", 0.25) if conf is None else conf)
    nms = float(getattr(detector, "nms", 0.45) if nms is None else nms)
    for label, value in (("conf", conf), ("nms", nms)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{label} must be in [0, 1], got {value}")
    names = list(detector.names)

    def new_batcher() -> MicroBatcher[DetectJob, dict]:
        return MicroBatcher(
            lambda jobs: run_jobs(detector, jobs), max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue,
            max_cost=max_queued_mb * 2**20,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.batcher.closed:  # the app is started again after a shutdown
            app.state.batcher = new_batcher()
        yield
        # uvicorn has already waited for in-flight requests; finish anything still queued.
        await asyncio.to_thread(app.state.batcher.close, True)

    app = FastAPI(
        title="yoloxkit",
        summary="YOLOX object detection over HTTP",
        version=__version__,
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN: off, the schema stays.
        docs_url=None,
        redoc_url=None,
    )
    # Started now so that the app also works without lifespan events (e.g. httpx.ASGITransport).
    app.state.batcher = new_batcher()
    app.state.detector = detector
    app.state.limits = limits
    app.state.received = 0
    # A small pool of its own bounds how many uploads are decoded (and held decoded) at once.
    decoder = ThreadPoolExecutor(max_workers=decode_workers, thread_name_prefix="yoloxkit-decode")

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}}, tags=["service"])
    async def healthz() -> Any:
        """Readiness: 200 while the batching worker runs and accepts requests."""
        batcher = app.state.batcher
        ready = batcher.alive and not batcher.closed
        body = {"status": "ok" if ready else "unavailable", "model": detector.model_name, "queued": batcher.queued,
                "received": app.state.received, "served": batcher.requests_served}
        return body if ready else JSONResponse(body, status_code=503)

    @app.get("/v1/model", response_model=ModelInfo, tags=["service"])
    async def model_info() -> Any:
        """The served model: name, backend, class names, input size, defaults and limits."""
        batcher = app.state.batcher
        return {
            "name": detector.model_name,
            "backend": detector.backend,
            "classes": names,
            "num_classes": len(names),
            "input_size": [int(v) for v in detector.size],
            "conf": conf,
            "nms": nms,
            "nms_free": bool(getattr(detector, "nms_free", False)),
            "precision": str(getattr(detector, "precision", "float32")),
            "slicing": None if default_slicing is None else dataclasses.asdict(default_slicing),
            "max_tiles": max_tiles,
            "max_batch": batcher.max_batch,
            "max_wait_ms": batcher.max_wait * 1000.0,
            "max_queue": batcher.max_queue,
            "max_upload_bytes": limits.max_upload_bytes,
            "max_pixels": limits.max_pixels,
            "accepted_formats": list(ACCEPTED_FORMATS),
        }

    @app.post(
        "/v1/detect",
        response_model=DetectResponse,
        responses=ERROR_RESPONSES,
        tags=["detect"],
    )
    async def detect(
        file: UploadFile = File(description="the image (JPEG, PNG, BMP, WebP, TIFF or GIF)"),
        conf_: Optional[float] = Query(None, alias="conf", ge=0.0, le=1.0, description="confidence threshold"),
        nms_: Optional[float] = Query(None, alias="nms", ge=0.0, le=1.0, description="NMS IoU threshold"),
        classes: Optional[str] = Query(None, description="comma-separated class names to keep"),
        slice_: Optional[str] = Query(None, alias="slice", description=SLICE_HELP),
        slice_overlap: Optional[float] = Query(None, description=OVERLAP_HELP),
        slice_full: Optional[bool] = Query(None, description=FULL_HELP),
        slice_form: Optional[str] = Form(None, alias="slice", description=SLICE_HELP),
        slice_overlap_form: Optional[float] = Form(None, alias="slice_overlap", description=OVERLAP_HELP),
        slice_full_form: Optional[bool] = Form(None, alias="slice_full", description=FULL_HELP),
    ) -> Any:
        """Detect objects in one uploaded image; requests arriving together share a forward pass.

        The slice options may be query parameters or form fields (the same value if both)."""
        started = perf_counter()
        app.state.received += 1
        try:
            wanted_ids = requested_class_ids(classes, names)
        except UnknownClassError as exc:
            raise HTTPException(422, f"classes: unknown class name {exc.name!r} (GET /v1/model lists them)")
        try:
            requested = request_slicing(
                default_slicing,
                _either("slice", slice_, slice_form),
                _either("slice_overlap", slice_overlap, slice_overlap_form),
                _either("slice_full", slice_full, slice_full_form),
            )
        except InferenceError as exc:
            raise HTTPException(422, str(exc))
        if isinstance(requested, Slicing) and not can_slice:
            raise HTTPException(422, "slice: this server's detector does not run sliced inference")
        name = _upload_name(file)
        data = await file.read(limits.max_upload_bytes + 1)
        try:
            image = await asyncio.get_running_loop().run_in_executor(
                decoder, decode_upload, data, limits, name or "file"
            )
        except UploadRejected as exc:
            raise HTTPException(exc.status_code, exc.detail)
        del data
        slicing = effective_slicing(default_slicing, requested)
        if slicing is not None:  # a slice that does not fit fails alone, before it can join a batch
            try:
                check_slicing(slicing, image.shape[0], image.shape[1], max_tiles, name)
            except InferenceError as exc:
                hint = f" (the server's --slice; send slice={SLICE_OFF} for the whole image)" if requested is None else ""
                raise HTTPException(422, f"{exc}{hint}")
        job = DetectJob(
            image=image,
            conf=conf if conf_ is None else float(conf_),
            nms=nms if nms_ is None else float(nms_),
            class_ids=wanted_ids,
            name=name,
            slicing=requested,
        )
        try:
            future = app.state.batcher.submit(job, cost=image.nbytes)
        except QueueFullError as exc:
            raise HTTPException(503, f"busy: {exc}; retry later", headers={"Retry-After": str(retry_after_s)})
        except BatcherClosedError as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": str(retry_after_s)})
        del image, job
        outcome = await asyncio.wrap_future(future)
        body = outcome.result
        body["timing"] = {
            "queue_ms": round(outcome.queue_ms, 3),
            "inference_ms": round(outcome.inference_ms, 3),
            "total_ms": round((perf_counter() - started) * 1000.0, 3),
            "batch_size": outcome.batch_size,
        }
        body["model"] = detector.model_name
        return body

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_CSP})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_upload_bytes + MULTIPART_SLACK_BYTES)
    return app

