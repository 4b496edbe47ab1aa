"""HTTP serving: ``create_app(detector)`` builds the FastAPI app behind ``yoloxkit serve``.

Needs the ``serve`` extra (``pip install 'yoloxkit[serve]'``: fastapi, uvicorn, python-multipart).
"""

from __future__ import annotations

from .batcher import BatchOutcome, BatcherClosedError, MicroBatcher, QueueFullError
from .limits import UploadLimits, UploadRejected, decode_upload
from .settings import ServiceSettings

__all__ = [
    "create_app",
    "ServiceSettings",
    "MicroBatcher",
    "BatchOutcome",
    "QueueFullError",
    "BatcherClosedError",
    "UploadLimits",
    "UploadRejected",
    "decode_upload",
]


def __getattr__(name: str):
    # The app module imports FastAPI; keep it out of `import yoloxkit.serve` for the batcher alone.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'yoloxkit.serve' has no attribute {name!r}")
