"""What the routes share: the served detector, its settings, and the pool that decodes uploads.

``create_app`` keeps one :class:`Service` in ``app.state.service``; the routes get it through the
:func:`current_service` dependency. The micro-batching worker is the app's runtime state
(``app.state.batcher``, replaced when the app starts again after a shutdown), made by
:meth:`Service.new_batcher`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi import Request

from ..infer.slicing import Slicing
from .batcher import MicroBatcher
from .detect import DetectJob, DetectorLike, run_jobs
from .options import detector_slicing
from .settings import ServiceSettings

__all__ = ["Service", "current_service", "current_batcher"]


class Service:
    """The detector behind the routes, with the settings it is served under (``conf``/``nms``
    filled in from the detector), its class names and default slicing."""

    def __init__(self, detector: DetectorLike, settings: ServiceSettings) -> None:
        self.detector = detector
        self.settings = settings.for_detector(detector)
        self.names: list[str] = list(detector.names)
        #: the slicing of requests that do not set their own (None: whole images)
        self.default_slicing: Slicing | None = detector_slicing(detector)
        #: the detector takes ``slicing=`` (yoloxkit.Detector does), so requests may slice
        self.can_slice = hasattr(detector, "slicing")
        # A small pool of its own bounds how many uploads are decoded (and held decoded) at once.
        self.decoder = ThreadPoolExecutor(max_workers=self.settings.decode_workers,
                                          thread_name_prefix="yoloxkit-decode")

    @property
    def model_name(self) -> str:
        return self.detector.model_name

    def new_batcher(self) -> MicroBatcher[DetectJob, dict]:
        """A started micro-batching worker running the detector on batches of jobs."""
        settings = self.settings
        return MicroBatcher(
            lambda jobs: run_jobs(self.detector, jobs), max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms, max_queue=settings.max_queue, max_cost=settings.max_queued_mb * 2**20,
        )


def current_service(request: Request) -> Service:
    """Dependency: the app's :class:`Service`."""
    return request.app.state.service


def current_batcher(request: Request) -> MicroBatcher[DetectJob, dict]:
    """Dependency: the app's running micro-batching worker."""
    return request.app.state.batcher
