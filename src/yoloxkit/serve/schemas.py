"""The JSON shapes of the HTTP API (pydantic models), which the OpenAPI schema documents."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, Field

__all__ = [
    "Detection", "Timing", "DetectResponse", "SlicingInfo", "ModelInfo", "Health", "ErrorBody", "ERROR_RESPONSES",
]


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
    408: {"model": ErrorBody, "description": "Request body not received within the server's --read-timeout"},
    413: {"model": ErrorBody, "description": "Upload or image pixel count over the limit"},
    415: {"model": ErrorBody, "description": "Not an image in an accepted format"},
    422: {"model": ErrorBody, "description": "Invalid option, unknown class name, slice that does not fit, or an image"
                                               " the detector cannot process"},
    500: {"model": ErrorBody, "description": "Inference failed for this image (other requests are not affected)"},
    503: {"model": ErrorBody, "description": "Queue full or shutting down; see Retry-After"},
}
