"""Run a micro-batch of detection requests on a :class:`yoloxkit.Detector`.

Requests in one batch may ask for different ``conf``, ``nms`` and ``classes``. Requests that
share an NMS threshold run in one forward pass at the lowest ``conf`` among them; each
request then keeps the detections at or above its own ``conf`` and in its own classes.
This equals running each request alone: greedy NMS visits boxes by descending score, so
boxes under a higher threshold never suppress boxes above it, and class-aware NMS treats
each class independently. NMS thresholds differ in what they keep, so each distinct
threshold gets its own pass (in practice nearly every request uses the default).

An NMS-free detector (``detector.nms_free``, e.g. an ``-e2e`` model) ignores ``nms`` and keeps
the top ``max_dets`` per image: lowering ``conf`` keeps the same top detections above a higher
one, but a class filter applied afterwards could find fewer than ``max_dets`` of its classes,
so its requests are grouped by class filter instead, each group's filter applied in the pass.

Sliced requests (``DetectJob.slicing``, else the detector's own ``slicing``) run apart from
whole-image ones and from other slicings: each distinct :class:`~yoloxkit.infer.slicing.Slicing`
gets its own pass. Merging the tiles with ``merge="nms"`` keeps the rules above (greedy, by
descending score), but non-maximum merging (``"nmm"``) grows each kept box to enclose the
lower-scoring boxes it takes, and with ``full`` a whole-image box of any score blocks the tile
boxes it overlaps, so a lower ``conf`` changes the boxes above a higher one: those requests
share a pass only with requests of the same ``conf``. ``slicing=`` reaches the
detector only for a pass whose slicing differs from the detector's own, so a detector without
that keyword serves every request that keeps the default.

:func:`run_jobs` raises when any pass fails; the :class:`~.batcher.MicroBatcher` then runs each
job of the batch again alone, so an image that fails the detector fails only its own request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from .options import RequestSlicing, detector_slicing, effective_slicing

__all__ = ["DetectJob", "DetectorLike", "run_jobs", "select_detections"]


class DetectorLike(Protocol):
    """The part of :class:`yoloxkit.Detector` the server uses; it also reads ``conf``, ``nms``,
    ``nms_free`` and ``slicing`` when the detector has them, and calls ``predict_arrays`` instead
    of ``predict`` when it exists."""

    names: list[str]
    model_name: str
    backend: str
    size: tuple[int, int]

    def predict(self, images: Sequence[np.ndarray], conf: float | None = None, nms: float | None = None,
                classes: Sequence[int] | None = None) -> list[Any]:
        """One ``Detections`` (with ``filter`` and ``to_json``) per image."""
        ...


@dataclass(frozen=True)
class DetectJob:
    """One request: a BGR image and its post-processing options. ``slicing``: None for the
    detector's own, False for the whole image, or a :class:`~yoloxkit.infer.slicing.Slicing`."""

    image: np.ndarray
    conf: float
    nms: float
    class_ids: frozenset[int] | None = None
    name: str | None = None
    slicing: RequestSlicing = None


def select_detections(result: Any, conf: float, class_ids: frozenset[int] | None,
                      name: str | None = None) -> dict:
    """JSON of ``result`` keeping detections with score >= ``conf`` and class in ``class_ids``."""
    kept = result.filter(conf=conf, classes=None if class_ids is None else sorted(class_ids))
    payload = kept.to_json()
    payload["image"] = name
    return payload


def run_jobs(detector: DetectorLike, jobs: Sequence[DetectJob]) -> list[dict]:
    """Detections JSON for each job, in order (see the module docstring for batching rules)."""
    nms_free = getattr(detector, "nms_free", False) is True
    default = detector_slicing(detector)
    groups: dict[tuple, list[int]] = {}
    for index, job in enumerate(jobs):
        key = (None, job.class_ids) if nms_free else (float(job.nms), None)
        slicing = effective_slicing(default, job.slicing)
        exact_conf = slicing is not None and (slicing.merge == "nmm" or slicing.full)
        groups.setdefault((*key, slicing, job.conf if exact_conf else None), []).append(index)
    outputs: list[dict | None] = [None] * len(jobs)
    for (nms, class_ids, slicing, _), indices in groups.items():
        lowest_conf = min(jobs[i].conf for i in indices)
        images = [jobs[i].image for i in indices]
        options: dict[str, Any] = {"conf": lowest_conf, "nms": nms}
        if class_ids is not None:
            options["classes"] = sorted(class_ids)
        if slicing != default:
            options["slicing"] = slicing if slicing is not None else False
        predict_arrays = getattr(detector, "predict_arrays", None)
        if predict_arrays is not None:  # yoloxkit.Detector: the arrays as one batch, no re-validation
            results = predict_arrays(images, **options)
        else:
            results = detector.predict(images, **options)
        if len(results) != len(indices):
            raise RuntimeError(f"detector returned {len(results)} results for {len(indices)} images")
        for i, result in zip(indices, results):
            job = jobs[i]
            outputs[i] = select_detections(result, job.conf, job.class_ids, job.name)
    return outputs  # type: ignore[return-value]
