"""``yoloxkit predict``: detect objects in images, folders, videos and webcams."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .detector_options import add_detector_options, build_detector

DESCRIPTION = """\
Detect objects in images, folders of images, video files and webcams.

SOURCE is an image file, a folder (all images inside, sorted), a video file (.mp4, .avi, .mov,
.mkv, ...) or a webcam index such as 0. Each image gets one line listing what was found; the
annotated pictures and videos go to --save-dir, and --json-out writes every result as JSON
(video frames carry a "frame" index). --weights takes a file or a zoo name (--weights yolox-s);
without --model and --weights the bundled yolox-nano COCO weights are used; --demo runs on the
bundled demo picture.

End-to-end models (-e2e) are NMS-free: each image keeps its top --max-dets detections scoring at
least --conf, without NMS, and --nms is ignored (a note says so); --no-nms-free runs class-aware
NMS on their scores instead, --nms-free runs any model without NMS.

A file that cannot be read is skipped with a warning, and gets an {"image", "source", "error"}
entry in --json-out; the run goes on and exits with status 2 at the end (--strict stops at the
first such file). Ctrl-C keeps what was done: the JSON of the images and frames done, and a
playable video of the frames done; the exit status is then 130.
"""

DEFAULT_SAVE_DIR = "runs/predict"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="detect objects in images, folders, videos or a webcam", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image, folder, video file or webcam index")
    add_detector_options(p)
    p.add_argument("--save-dir", default=DEFAULT_SAVE_DIR,
                   help=f"folder for annotated images and videos (default {DEFAULT_SAVE_DIR})")
    p.add_argument("--no-save", action="store_true", help="do not write annotated images or videos")
    p.add_argument("--json-out", metavar="FILE", help="write all detections to this JSON file (a list)")
    p.add_argument("--demo", action="store_true", help="run on the bundled demo picture")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first file that cannot be read (default: skip it, warn, exit 2 at the end)")
    p.set_defaults(func=run)


def _classes(values: list[str] | None) -> list[str] | None:
    from ..infer.classes import split_names

    return split_names(values) if values else None


class _OutputNames:
    """Unique output file names inside ``save_dir`` (two sources called ``a.jpg`` -> ``a_1.jpg``)."""

    def __init__(self, save_dir: Path) -> None:
        self.save_dir = save_dir
        self.used: set[str] = set()

    def __call__(self, name: str, suffix: str) -> Path:
        stem = Path(name).stem
        candidate, n = f"{stem}{suffix}", 0
        while candidate in self.used:
            n += 1
            candidate = f"{stem}_{n}{suffix}"
        self.used.add(candidate)
        return self.save_dir / candidate


def _image_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return suffix if suffix in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff") else ".jpg"


def _write_image(path: Path, image) -> None:
    import cv2

    from ..errors import YoloxkitError
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise YoloxkitError(f"cannot write image {path}")


def _summary(det) -> str:
    return ", ".join(det.labels()) or "nothing found"


def _consecutive_runs(sources: list) -> list[list]:
    """Split sources into runs of consecutive images and single videos/webcams."""
    runs: list[list] = []
    for source in sources:
        if source.kind == "image" and runs and runs[-1][0].kind == "image":
            runs[-1].append(source)
        else:
            runs.append([source])
    return runs


class _Unreadable(Exception):
    """A source that could not be read, in a --strict run (or a run of a single source)."""


class _Results:
    """What a run has done: the JSON records in source order, and the sources it could not read."""

    def __init__(self, stop_at_first: bool) -> None:
        self.records: list[dict] = []
        self.failed: list[str] = []
        self.stop_at_first = stop_at_first

    def add(self, record: dict) -> None:
        self.records.append(record)

    def unreadable(self, source, exc: Exception) -> None:
        """Record an error entry for ``source``; warn and go on, or stop (:class:`_Unreadable`)."""
        from tqdm import tqdm

        where = str(source.path) if source.path is not None else source.name
        self.records.append({"image": source.name, "source": where, "error": str(exc)})
        self.failed.append(source.name)
        if self.stop_at_first:
            raise _Unreadable(str(exc))
        tqdm.write(f"warning: {exc} (skipped)", file=sys.stderr)


def _read(chunk, slicing=None) -> list:
    """Read the images of ``chunk``: per source, its array, or the :class:`ImageReadError` (or,
    with ``slicing``, the :class:`InferenceError` of an image smaller than the slice)."""
    from ..errors import ImageReadError, InferenceError
    from ..imaging import read_image

    read = []
    for source in chunk:
        try:
            image = read_image(source.path)
            if slicing is not None:
                slicing.check_fits(*image.shape[:2], image=source.name)
            read.append(image)
        except (ImageReadError, InferenceError) as exc:
            read.append(exc)
    return read


def _predict_images(detector, sources, classes, output_names, batch_size: int, progress: bool,
                    results: _Results) -> None:
    """Detect in image files batch by batch; print one line per image; add their JSON to
    ``results`` in source order (an unreadable file gets its error entry in its place)."""
    from tqdm import tqdm

    def detect(pending: list) -> None:
        found = detector.predict_arrays([a for _, a in pending], classes=classes,
                                        image_names=[s.name for s, _ in pending])
        for (source, _), det in zip(pending, found):
            line = f"{source.name}: {_summary(det)}"
            if output_names is not None:
                out_path = output_names(source.name, _image_suffix(source.path))
                _write_image(out_path, det.plot())
                line += f" -> {out_path}"
            results.add(det.to_json())
            tqdm.write(line)
        pending.clear()

    with tqdm(total=len(sources), desc="images", unit="img", disable=not progress or len(sources) < 2,
              leave=False) as bar:
        for start in range(0, len(sources), batch_size):
            chunk = sources[start : start + batch_size]
            pending: list = []
            for source, image in zip(chunk, _read(chunk, detector.slicing)):
                if isinstance(image, Exception):
                    detect(pending)  # the images before it come first (and are done under --strict)
                    results.unreadable(source, image)
                else:
                    pending.append((source, image))
            detect(pending)
            bar.update(len(chunk))


def _predict_video(detector, source, classes, output_names, batch_size: int, progress: bool,
                   results: _Results) -> None:
    """Detect in every frame of a video or webcam; print a summary line; add per-frame JSON to ``results``."""
    from tqdm import tqdm

    from ..errors import ImageReadError, InferenceError
    from ..infer.video import VideoInterrupted, predict_video

    save_path = output_names(source.name, ".mp4") if output_names is not None else None
    interrupted = None
    try:
        frames, _ = predict_video(
            lambda arrays: detector.predict_arrays(arrays, classes=classes),
            source, save_path=save_path, batch_size=batch_size, progress=progress,
        )
    except ImageReadError as exc:  # the video cannot be opened
        results.unreadable(source, exc)
        return
    except InferenceError as exc:  # its frames are smaller than --slice
        results.unreadable(source, InferenceError(f"{source.name}: {exc}"))
        return
    except VideoInterrupted as stop:
        frames, interrupted = stop.results, stop
    found = sum(len(d) for d in frames)
    where = f" -> {save_path}" if save_path is not None else ""
    done = "interrupted after " if interrupted is not None else ""
    tqdm.write(f"{source.name}: {done}{len(frames)} frames, {found} detections{where}")
    for index, det in enumerate(frames):
        results.add({**det.to_json(), "frame": index})
    if interrupted is not None:
        raise interrupted


def _write_json(records: list[dict], path: str) -> None:
    from ..io import atomic_write_json_records

    atomic_write_json_records(records, path)
    errors = sum("error" in r for r in records)
    unreadable = f" and {errors} unreadable" if errors else ""
    print(f"wrote {len(records) - errors} results{unreadable} to {path}")


def run(args: argparse.Namespace) -> int:
    from ..errors import YoloxkitError
    from ..infer.sources import expand_sources
    from ..packaged import bundled_demo_image

    arguments = list(args.sources)
    if args.demo:
        arguments.insert(0, str(bundled_demo_image()))
    if not arguments:
        hint = " (--classes takes several names: put it after the sources or use commas)" if args.classes else ""
        raise YoloxkitError(
            f"no SOURCE given: pass image files, folders, videos or a webcam index (or --demo){hint}"
        )
    sources = expand_sources(arguments)

    detector = build_detector(args)
    classes = _classes(args.classes)
    detector.resolve_classes(classes)  # an unknown class name fails before any work
    print(detector.describe(), flush=True)
    save_dir = None if args.no_save else Path(args.save_dir)
    output_names = _OutputNames(save_dir) if save_dir is not None else None
    # A single source that cannot be read is the run's error, as with --strict.
    results = _Results(stop_at_first=args.strict or len(sources) == 1)
    progress = not args.no_progress
    code, message = 0, None
    try:
        for run_sources in _consecutive_runs(sources):
            if run_sources[0].kind == "image":
                _predict_images(detector, run_sources, classes, output_names, args.batch_size or 1, progress, results)
            else:
                for source in run_sources:
                    _predict_video(detector, source, classes, output_names, args.batch_size or 1, progress, results)
    except _Unreadable as exc:
        code, message = 2, f"error: {exc}"
    except KeyboardInterrupt:
        code, message = 130, "interrupted"
    if args.json_out:
        _write_json(results.records, args.json_out)
    if code == 0 and results.failed:
        names = ", ".join(results.failed[:3]) + (", ..." if len(results.failed) > 3 else "")
        code, message = 2, (
            f"error: {len(results.failed)} of {len(sources)} sources could not be "
            f"{'read or sliced' if detector.slicing is not None else 'read'} ({names})"
        )
    sys.stdout.flush()
    if message is not None:
        print(message, file=sys.stderr)
    return code
