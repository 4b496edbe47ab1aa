"""``yoloxkit predict``: detect objects in images, folders, videos and webcams."""

from __future__ import annotations

import argparse
import sys

from .detector_options import add_detector_options, build_detector
from .stream_options import STREAM_HELP, add_stream_options, stream_settings

DESCRIPTION = """\
Detect objects in images, folders of images, video files, webcams and live streams.

SOURCE is an image file, a folder (all images inside, sorted), a video file (.mp4, .avi, .mov,
.mkv, ...), a webcam index such as 0, or a stream URL (rtsp://..., http://...). Each image gets one line listing what was found; the
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

--save-dir and --json-out are checked before any image runs. An annotated copy that still cannot
be written (a full disk) ends the saving, not the run: every image gets its --json-out record, and
the run exits with status 2 naming the first file that could not be written and why.

""" + STREAM_HELP + """ Each stream gets its video (named
after its host, port and path) and its --json-out records ("frame": its number in the stream).
"""

DEFAULT_SAVE_DIR = "runs/predict"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="detect objects in images, folders, videos or a webcam", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image, folder, video file, webcam index or stream URL")
    add_detector_options(p)
    add_stream_options(p)
    p.add_argument("--save-dir", default=DEFAULT_SAVE_DIR,
                   help=f"folder for annotated images and videos (default {DEFAULT_SAVE_DIR})")
    p.add_argument("--no-save", action="store_true", help="do not write annotated images or videos")
    p.add_argument("--json-out", metavar="FILE", help="write all detections to this JSON file (a list)")
    p.add_argument("--demo", action="store_true", help="run on the bundled demo picture")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first file that cannot be read (default: skip it, warn, exit 2 at the end)")
    p.set_defaults(func=run)


def _write_json(records: list[dict], path: str) -> None:
    from ..io import atomic_write_json_records

    atomic_write_json_records(records, path, what="--json-out")
    errors = sum("error" in r for r in records)
    unreadable = f" and {errors} unreadable" if errors else ""
    print(f"wrote {len(records) - errors} results{unreadable} to {path}")


def _sources(args: argparse.Namespace) -> list:
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
    return expand_sources(arguments)


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output of the run can be written: checked before any work."""
    from ..io import check_writable, check_writable_dir

    if args.json_out:
        check_writable(args.json_out, "--json-out")
    if not args.no_save:
        check_writable_dir(args.save_dir, "--save-dir")


def _exit(run, sources: list, sliced: bool, json_out: str | None) -> tuple[int, str | None]:
    """The exit status and the closing message of a run."""
    if run.stopped is not None:
        return 2, f"error: {run.stopped}"
    if run.interrupted:
        return 130, "interrupted"
    if run.save_error is not None:
        kind = "files" if any(path.endswith(".mp4") for path in run.unsaved) else "images"
        more = f" ({len(run.unsaved) - 1} more {kind} not saved)" if len(run.unsaved) > 1 else ""
        kept = f"; the JSON was written to {json_out}" if json_out else ""
        return 2, f"error: {run.save_error}{more}{kept}"
    if run.failed:
        names = ", ".join(run.failed[:3]) + (", ..." if len(run.failed) > 3 else "")
        return 2, (f"error: {len(run.failed)} of {len(sources)} sources could not be "
                   f"{'read or sliced' if sliced else 'read'} ({names})")
    return 0, None


def run(args: argparse.Namespace) -> int:
    from ..infer.classes import split_names
    from ..infer.run import predict_sources

    sources = _sources(args)
    _check_outputs(args)
    detector = build_detector(args)
    classes = split_names(args.classes) if args.classes else None
    detector.resolve_classes(classes)  # an unknown class name fails before any work
    print(detector.describe(), flush=True)
    # A single source that cannot be read is the run's error, as with --strict.
    run = predict_sources(detector, sources, classes, save_dir=None if args.no_save else args.save_dir,
                          batch_size=args.batch_size or 1, progress=not args.no_progress,
                          strict=args.strict or len(sources) == 1, stream_settings=stream_settings(args),
                          max_frames=args.max_frames)
    if args.json_out:
        _write_json(run.records, args.json_out)
    code, message = _exit(run, sources, detector.slicing is not None, args.json_out)
    sys.stdout.flush()
    if message is not None:
        print(message, file=sys.stderr)
    return code
