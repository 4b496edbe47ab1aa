"""``GET /v1/model`` (the served model, its defaults and limits) and ``GET /healthz`` (readiness)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..batcher import MicroBatcher
from ..limits import ACCEPTED_FORMATS
from ..schemas import Health, ModelInfo
from ..service import Service, current_batcher, current_service

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(request: Request, service: Service = Depends(current_service),
                  batcher: MicroBatcher = Depends(current_batcher)) -> Any:
    """Readiness: 200 while the batching worker runs and accepts requests."""
    ready = batcher.alive and not batcher.closed
    body = {"status": "ok" if ready else "unavailable", "model": service.model_name, "queued": batcher.queued,
            "received": request.app.state.received, "served": batcher.requests_served}
    return body if ready else JSONResponse(body, status_code=503)


@router.get("/v1/model", response_model=ModelInfo)
async def model_info(service: Service = Depends(current_service),
                     batcher: MicroBatcher = Depends(current_batcher)) -> Any:
    """The served model: name, backend, class names, input size, defaults and limits."""
    detector, settings = service.detector, service.settings
    slicing = service.default_slicing
    return {
        "name": detector.model_name,
        "backend": detector.backend,
        "classes": service.names,
        "num_classes": len(service.names),
        "input_size": [int(v) for v in detector.size],
        "conf": settings.conf,
        "nms": settings.nms,
        "nms_free": bool(getattr(detector, "nms_free", False)),
        "precision": str(getattr(detector, "precision", "float32")),
        "slicing": None if slicing is None else dataclasses.asdict(slicing),
        "max_tiles": settings.max_tiles,
        "max_batch": batcher.max_batch,
        "max_wait_ms": batcher.max_wait * 1000.0,
        "max_queue": batcher.max_queue,
        "max_upload_bytes": settings.limits.max_upload_bytes,
        "max_pixels": settings.limits.max_pixels,
        "accepted_formats": list(ACCEPTED_FORMATS),
    }
