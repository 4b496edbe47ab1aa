"""The service's options, in one frozen object: thresholds, batching, memory and upload limits, read timeout.

``create_app(detector, settings=ServiceSettings(...))`` (or the same fields as keywords) takes
them; ``yoloxkit serve`` builds one from its flags. The defaults of the thresholds are the
detector's (:mod:`yoloxkit.infer.defaults` for a detector without them), checked by the same
:func:`~yoloxkit.infer.checks.threshold` the ``Detector`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..infer.checks import threshold
from ..infer.defaults import DEFAULT_CONF, DEFAULT_NMS
from .limits import UploadLimits

__all__ = ["ServiceSettings"]


@dataclass(frozen=True)
class ServiceSettings:
    """What the service allows and assumes; every field is a ``create_app`` keyword.

    ``conf``/``nms``: defaults of requests that do not set them (None: the detector's).
    ``max_batch`` requests share a forward pass, waiting at most ``max_wait_ms`` for each other;
    at most ``max_queue`` requests and ``max_queued_mb`` MiB of decoded pixels wait, beyond that
    the answer is 503 with ``Retry-After: retry_after_s``. ``decode_workers`` uploads are decoded
    at once; ``limits`` bound each upload; a sliced request may cut its image into at most
    ``max_tiles`` crops. A request body (the upload) must arrive within ``read_timeout_s``
    seconds of its headers, else 408: a slow or stalled client cannot hold a connection.
    """

    conf: float | None = None
    nms: float | None = None
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    max_queued_mb: float = 1024.0
    decode_workers: int = 4
    limits: UploadLimits = field(default_factory=UploadLimits)
    retry_after_s: int = 1
    max_tiles: int = 256
    read_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.decode_workers < 1:
            raise ValueError(f"decode_workers must be >= 1, got {self.decode_workers}")
        if self.max_tiles < 1:
            raise ValueError(f"max_tiles must be >= 1, got {self.max_tiles}")
        if not self.read_timeout_s > 0:
            raise ValueError(f"read_timeout_s must be > 0, got {self.read_timeout_s}")
        for name in ("conf", "nms"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, threshold(value, name))

    def for_detector(self, detector: object) -> "ServiceSettings":
        """These settings with ``conf``/``nms`` filled in from ``detector`` when not set (checked
        by :meth:`__post_init__`, as every value is)."""
        conf = getattr(detector, "conf", DEFAULT_CONF) if self.conf is None else self.conf
        nms = getattr(detector, "nms", DEFAULT_NMS) if self.nms is None else self.nms
        return replace(self, conf=conf, nms=nms)
