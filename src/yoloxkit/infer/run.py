"""One ``predict`` run over its sources: a line per image, annotated copies and JSON records.

Consecutive image files run in batches; each video or webcam runs frame by frame
(:func:`~.video.predict_video`). A source that cannot be read (or, with slicing, is smaller than
the slice) gets an ``{"image", "source", "error"}`` record in its place and a warning, and the run
goes on, unless it stops at the first (``strict``). Ctrl-C ends the run with everything done kept
(:attr:`PredictRun.interrupted`). An annotated copy that cannot be written (disk full, folder
gone) does not stop the run either: the first failure is kept in :attr:`PredictRun.save_error`,
no further copies are written, and every image still gets its record. The ``predict`` command
is a thin layer over :func:`predict_sources`, as ``track`` is over
:func:`yoloxkit.tracking.track_sequence`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import ImageReadError, InferenceError, OutputError, YoloxkitError
from ..imaging import output_suffix, read_image
from ..io import atomic_path
from .detections import Detections
from .detector import Detector
from .sources import Source
from .stream_run import predict_streams
from .streams import StreamSettings
from .video import VideoInterrupted, predict_video

__all__ = ["PredictRun", "OutputNames", "predict_sources"]


class OutputNames:
    """Unique output file names inside ``save_dir`` (two sources called ``a.jpg`` -> ``a_1.jpg``)."""

    def __init__(self, save_dir: str | os.PathLike) -> None:
        self.save_dir = Path(save_dir)
        self.used: set[str] = set()

    def __call__(self, name: str, suffix: str) -> Path:
        stem = Path(name).stem
        candidate, n = f"{stem}{suffix}", 0
        while candidate in self.used:
            n += 1
            candidate = f"{stem}_{n}{suffix}"
        self.used.add(candidate)
        return self.save_dir / candidate


class _Unreadable(Exception):
    """A source that could not be read, in a run that stops at the first."""


@dataclass
class PredictRun:
    """What a run did: the JSON records in source order (an unreadable source's error record in
    its place; video frames carry ``"frame"``), the names of the sources it could not read, the
    error that stopped it (``strict``), whether Ctrl-C ended it, and the first annotated copy
    that could not be written (``save_error``) with every copy not written (``unsaved``)."""

    records: list[dict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopped: str | None = None
    interrupted: bool = False
    strict: bool = False
    save_error: str | None = None
    unsaved: list[str] = field(default_factory=list)

    def save_failed(self, path: str | os.PathLike, exc: Exception | None = None) -> None:
        """Record that the annotated copy ``path`` was not written (``exc``: why; the first is kept)."""
        if self.save_error is None and exc is not None:
            self.save_error = str(exc)
        self.unsaved.append(str(path))

    def unreadable(self, source: Source, exc: Exception, skipped: bool = True) -> None:
        """Record an error entry for ``source``; warn and go on, or stop (``strict``). A live
        stream given up after its frames were done is not ``skipped``: its warning says only why."""
        from tqdm import tqdm

        where = str(source.path) if source.path is not None else source.name
        self.records.append({"image": source.name, "source": where, "error": str(exc)})
        self.failed.append(source.name)
        if self.strict:
            raise _Unreadable(str(exc))
        tqdm.write(f"warning: {exc}{' (skipped)' if skipped else ''}", file=sys.stderr)


def _write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` for ``path``'s suffix and write it atomically (a failed write says why:
    :class:`OutputError`)."""
    ok, encoded = cv2.imencode(path.suffix, image)
    if not ok:
        raise YoloxkitError(f"cannot encode image {path}")
    with atomic_path(path, what="image") as tmp:
        tmp.write_bytes(encoded.tobytes())


def _save_image(run: PredictRun, path: Path, det: Detections) -> bool:
    """Write the annotated copy of ``det`` to ``path``; False when it was not written (after
    the run's first failed write, none is tried)."""
    if run.save_error is not None:
        run.save_failed(path)
        return False
    try:
        _write_image(path, det.plot())
    except OutputError as exc:
        run.save_failed(path, exc)
        return False
    return True


def _summary(det: Detections) -> str:
    return ", ".join(det.labels()) or "nothing found"


def _consecutive_runs(sources: Sequence[Source]) -> list[list[Source]]:
    """Split sources into runs of consecutive images and single videos/webcams; the live streams
    form one run, where the first of them is (they run together)."""
    runs: list[list[Source]] = []
    streams: list[Source] | None = None
    for source in sources:
        if source.kind == "stream":
            if streams is None:
                streams = []
                runs.append(streams)
            streams.append(source)
        elif source.kind == "image" and runs and runs[-1][0].kind == "image":
            runs[-1].append(source)
        else:
            runs.append([source])
    return runs


def _read(chunk: Sequence[Source], slicing=None) -> list[np.ndarray | Exception]:
    """Read the images of ``chunk``: per source, its array, or the :class:`ImageReadError` (or,
    with ``slicing``, the :class:`InferenceError` of an image smaller than the slice)."""
    read: list[np.ndarray | Exception] = []
    for source in chunk:
        try:
            image = read_image(source.path)
            if slicing is not None:
                slicing.check_fits(*image.shape[:2], image=source.name)
            read.append(image)
        except (ImageReadError, InferenceError) as exc:
            read.append(exc)
    return read


def _predict_images(detector: Detector, sources: list[Source], classes, output_names: OutputNames | None,
                    batch_size: int, progress: bool, run: PredictRun) -> None:
    """Detect in image files batch by batch; print one line per image; add their JSON to
    ``run`` in source order (an unreadable file gets its error entry in its place)."""
    from tqdm import tqdm

    def detect(pending: list) -> None:
        found = detector.predict_arrays([a for _, a in pending], classes=classes,
                                        image_names=[s.name for s, _ in pending])
        for (source, _), det in zip(pending, found):
            line = f"{source.name}: {_summary(det)}"
            if output_names is not None:
                out_path = output_names(source.name, output_suffix(source.path))
                if _save_image(run, out_path, det):
                    line += f" -> {out_path}"
            run.records.append(det.to_json())
            tqdm.write(line)
        pending.clear()

    with tqdm(total=len(sources), desc="images", unit="img", disable=not progress or len(sources) < 2,
              leave=False) as bar:
        for start in range(0, len(sources), batch_size):
            chunk = sources[start : start + batch_size]
            pending: list = []
            for source, image in zip(chunk, _read(chunk, detector.slicing)):
                if isinstance(image, Exception):
                    detect(pending)  # the images before it come first (and are done under strict)
                    run.unreadable(source, image)
                else:
                    pending.append((source, image))
            detect(pending)
            bar.update(len(chunk))


def _predict_video(detector: Detector, source: Source, classes, output_names: OutputNames | None,
                   batch_size: int, progress: bool, run: PredictRun, vid_stride: int = 1) -> None:
    """Detect in every frame of a video or webcam; print a summary line; add per-frame JSON to ``run``."""
    from tqdm import tqdm

    save_path = output_names(source.name, ".mp4") if output_names is not None else None
    if save_path is not None and run.save_error is not None:  # writing has failed before: do not try
        run.save_failed(save_path)
        save_path = None
    interrupted = None
    try:
        frames, _ = predict_video(
            lambda arrays: detector.predict_arrays(arrays, classes=classes),
            source, save_path=save_path, batch_size=batch_size, progress=progress,
            on_save_error=lambda exc: run.save_failed(save_path, exc), vid_stride=vid_stride,
        )
    except ImageReadError as exc:  # the video cannot be opened
        run.unreadable(source, exc)
        return
    except InferenceError as exc:  # its frames are smaller than the slice
        run.unreadable(source, InferenceError(f"{source.name}: {exc}"))
        return
    except VideoInterrupted as stop:
        frames, interrupted = stop.results, stop
    found = sum(len(d) for d in frames)
    written = save_path is not None and str(save_path) not in run.unsaved
    where = f" -> {save_path}" if written else ""
    done = "interrupted after " if interrupted is not None else ""
    tqdm.write(f"{source.name}: {done}{len(frames)} frames, {found} detections{where}")
    for index, det in enumerate(frames):
        run.records.append({**det.to_json(), "frame": index * vid_stride})
    if interrupted is not None:
        raise interrupted


def predict_sources(
    detector: Detector,
    sources: Sequence[Source],
    classes: Sequence[int | str] | None = None,
    save_dir: str | os.PathLike | None = None,
    batch_size: int = 1,
    progress: bool = True,
    strict: bool = False,
    stream_settings: StreamSettings | None = None,
    max_frames: int | None = None,
) -> PredictRun:
    """Detect in every source (from :func:`~.sources.expand_sources`) in order, printing a line
    per image and per video; annotated copies go to ``save_dir`` (None: none written), named
    after their sources. ``classes`` keeps only those class names or ids; ``batch_size`` images
    (or video frames) run per batch. See the module docstring for unreadable sources and Ctrl-C.
    Live streams run together (:func:`~.stream_run.predict_streams`) with ``stream_settings``
    (its ``vid_stride`` applies to video files too), each until ``max_frames`` frames if given.
    """
    stream_settings = stream_settings or StreamSettings()
    output_names = OutputNames(save_dir) if save_dir is not None else None
    run = PredictRun(strict=strict)
    try:
        for run_sources in _consecutive_runs(sources):
            if run_sources[0].kind == "image":
                _predict_images(detector, run_sources, classes, output_names, batch_size, progress, run)
            elif run_sources[0].kind == "stream":
                predict_streams(detector, run_sources, run, stream_settings, classes, output_names, progress,
                                max_frames)
            else:
                for source in run_sources:
                    _predict_video(detector, source, classes, output_names, batch_size, progress, run,
                                   stream_settings.vid_stride)
    except _Unreadable as exc:
        run.stopped = str(exc)
    except KeyboardInterrupt:
        run.interrupted = True
    return run
