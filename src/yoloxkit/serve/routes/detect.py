"""``POST /v1/detect``: one uploaded image in, its detections out, micro-batched with others.

The slice options are read once, by the :func:`slice_options` dependency, from the query or the
form (the same value if both); the thresholds are checked by FastAPI against ``[0, 1]``, the same
range :func:`~yoloxkit.infer.checks.threshold` enforces on the service's defaults.

A request whose image fails in the detector (the batcher has already re-run it alone, so the
failure is its own) gets one line: 422 for a :class:`~yoloxkit.errors.YoloxkitError` (the image
cannot be processed as asked), 500 for anything else; the server logs that line, no traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import Future
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Optional

import numpy as np
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile

from ...errors import InferenceError, YoloxkitError
from ...infer.classes import UnknownClassError, class_ids, split_names
from ...infer.defaults import DEFAULT_SLICE_OVERLAP
from ...infer.slicing import Slicing
from ..batcher import BatchOutcome, BatcherClosedError, MicroBatcher, QueueFullError
from ..detect import DetectJob
from ..limits import UploadRejected, decode_upload
from ..options import SLICE_OFF, RequestSlicing, check_slicing, effective_slicing, request_slicing
from ..schemas import ERROR_RESPONSES, DetectResponse
from ..service import Service, current_batcher, current_service

__all__ = ["router", "SliceOptions", "slice_options", "requested_class_ids"]

SLICE_HELP = (
    f"sliced inference for small objects: tiles of H or HxW image pixels (height x width), or {SLICE_OFF!r} "
    "for the whole image (default: the server's --slice)"
)
OVERLAP_HELP = (
    f"fraction of a tile shared with its neighbour, in (0, 1) (default: the server's, else {DEFAULT_SLICE_OVERLAP})"
)
FULL_HELP = "also run the whole image, for objects larger than a tile (default: the server's)"

router = APIRouter(tags=["detect"])
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SliceOptions:
    """A request's ``slice``, ``slice_overlap`` and ``slice_full`` (None: not given)."""

    size: str | None = None
    overlap: float | None = None
    full: bool | None = None


def _either(name: str, query: Any, form: Any) -> Any:
    """A slice option given as a query parameter or a form field; 422 when both disagree."""
    if query is not None and form is not None and query != form:
        raise HTTPException(422, f"{name}: the query parameter ({query!r}) and the form field ({form!r}) differ")
    return query if query is not None else form


def slice_options(
    slice_: Optional[str] = Query(None, alias="slice", description=SLICE_HELP),
    slice_overlap: Optional[float] = Query(None, description=OVERLAP_HELP),
    slice_full: Optional[bool] = Query(None, description=FULL_HELP),
    slice_form: Optional[str] = Form(None, alias="slice", description=SLICE_HELP),
    slice_overlap_form: Optional[float] = Form(None, alias="slice_overlap", description=OVERLAP_HELP),
    slice_full_form: Optional[bool] = Form(None, alias="slice_full", description=FULL_HELP),
) -> SliceOptions:
    """Dependency: the slice options, each from the query parameter or the form field."""
    return SliceOptions(
        _either("slice", slice_, slice_form),
        _either("slice_overlap", slice_overlap, slice_overlap_form),
        _either("slice_full", slice_full, slice_full_form),
    )


def requested_class_ids(value: str | None, names: list[str]) -> frozenset[int] | None:
    """The ``classes`` query (comma-separated class names, any case) as class ids; ``None``: no
    filter. Unknown names raise :class:`~yoloxkit.infer.classes.UnknownClassError`."""
    wanted = split_names([value] if value else [])
    if not wanted:
        return None
    return frozenset(class_ids(wanted, names, ids=False, ignore_case=True))


def _class_filter(classes: str | None, names: list[str]) -> frozenset[int] | None:
    try:
        return requested_class_ids(classes, names)
    except UnknownClassError as exc:
        raise HTTPException(422, f"classes: unknown class name {exc.name!r} (GET /v1/model lists them)")


def _requested_slicing(service: Service, options: SliceOptions) -> RequestSlicing:
    try:
        requested = request_slicing(service.default_slicing, options.size, options.overlap, options.full)
    except InferenceError as exc:
        raise HTTPException(422, str(exc))
    if isinstance(requested, Slicing) and not service.can_slice:
        raise HTTPException(422, "slice: this server's detector does not run sliced inference")
    return requested


def _upload_name(upload: UploadFile) -> str | None:
    if not upload.filename:
        return None
    return os.path.basename(upload.filename.replace("\\", "/"))[:255] or None


async def _decode(service: Service, upload: UploadFile, name: str | None) -> np.ndarray:
    """The uploaded image as BGR pixels, decoded in the service's pool within its limits."""
    limits = service.settings.limits
    data = await upload.read(limits.max_upload_bytes + 1)
    try:
        return await asyncio.get_running_loop().run_in_executor(
            service.decoder, decode_upload, data, limits, name or "file"
        )
    except UploadRejected as exc:
        raise HTTPException(exc.status_code, exc.detail)


def _check_fits(service: Service, requested: RequestSlicing, image: np.ndarray, name: str | None) -> None:
    """422 for a slice that does not fit the image: it fails alone, before it can join a batch."""
    slicing = effective_slicing(service.default_slicing, requested)
    if slicing is None:
        return
    try:
        check_slicing(slicing, image.shape[0], image.shape[1], service.settings.max_tiles, name)
    except InferenceError as exc:
        hint = f" (the server's --slice; send slice={SLICE_OFF} for the whole image)" if requested is None else ""
        raise HTTPException(422, f"{exc}{hint}")


def _submit(batcher: MicroBatcher, job: DetectJob, retry_after_s: int) -> Future:
    """Queue ``job``; 503 with ``Retry-After`` when the queue is full or closed."""
    retry = {"Retry-After": str(retry_after_s)}
    try:
        return batcher.submit(job, cost=job.image.nbytes)
    except QueueFullError as exc:
        raise HTTPException(503, f"busy: {exc}; retry later", headers=retry)
    except BatcherClosedError as exc:
        raise HTTPException(503, str(exc), headers=retry)


async def _served(future: Future, name: str | None) -> BatchOutcome:
    """The request's outcome; its own failure as a one-line 422 (a yoloxkit error) or 500, logged
    as that one line."""
    try:
        return await asyncio.wrap_future(future)
    except YoloxkitError as exc:
        status, detail = 422, f"{name or 'file'}: {_first_line(exc)}"
    except Exception as exc:  # noqa: BLE001 - any failure of this image alone is answered, not raised
        status, detail = 500, f"{name or 'file'}: inference failed ({type(exc).__name__}: {_first_line(exc)})"
    logger.warning("POST /v1/detect %d: %s", status, detail)
    raise HTTPException(status, detail)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else "no message"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _response(outcome: BatchOutcome, started: float, model_name: str) -> dict:
    body = outcome.result
    body["timing"] = {
        "queue_ms": round(outcome.queue_ms, 3),
        "inference_ms": round(outcome.inference_ms, 3),
        "total_ms": round((perf_counter() - started) * 1000.0, 3),
        "batch_size": outcome.batch_size,
    }
    body["model"] = model_name
    return body


@router.post("/v1/detect", response_model=DetectResponse, responses=ERROR_RESPONSES)
async def detect(
    request: Request,
    file: UploadFile = File(description="the image (JPEG, PNG, BMP, WebP, TIFF or GIF)"),
    conf: Optional[float] = Query(None, ge=0.0, le=1.0, description="confidence threshold"),
    nms: Optional[float] = Query(None, ge=0.0, le=1.0, description="NMS IoU threshold"),
    classes: Optional[str] = Query(None, description="comma-separated class names to keep"),
    slicing: SliceOptions = Depends(slice_options),
    service: Service = Depends(current_service),
    batcher: MicroBatcher = Depends(current_batcher),
) -> Any:
    """Detect objects in one uploaded image; requests arriving together share a forward pass.

    The slice options may be query parameters or form fields (the same value if both)."""
    started = perf_counter()
    request.app.state.received += 1
    wanted_ids = _class_filter(classes, service.names)
    requested = _requested_slicing(service, slicing)
    name = _upload_name(file)
    image = await _decode(service, file, name)
    _check_fits(service, requested, image, name)
    settings = service.settings
    job = DetectJob(image=image, conf=settings.conf if conf is None else float(conf),
                    nms=settings.nms if nms is None else float(nms), class_ids=wanted_ids, name=name,
                    slicing=requested)
    future = _submit(batcher, job, settings.retry_after_s)
    del image, job
    outcome = await _served(future, name)
    return _response(outcome, started, service.model_name)
