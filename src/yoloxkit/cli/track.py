"""``yoloxkit track`` (detect and track through videos, webcams and frame folders) and
``yoloxkit track-eval`` (MOTA, IDF1, HOTA of MOTChallenge output)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..tracking import CONFIDENT_SCORE, DEFAULT_TRACK_CONF, DEFAULT_TRACKER, TRACKER_NAMES
from .argtypes import positive_float, unit_float
from .detector_options import add_detector_options, build_detector
from .stream_options import STREAM_HELP, add_stream_options, stream_settings

TRACK_DESCRIPTION = f"""\
Detect objects in every frame and follow them: each gets an identity that it keeps from frame to
frame.

SOURCE is a video file, a webcam index such as 0, a folder of frames (a MOTChallenge sequence
folder with img1/ and seqinfo.ini works as it is), or a stream URL (rtsp://..., http://...). Every detector option of `predict` applies;
--conf defaults to {DEFAULT_TRACK_CONF} here because ByteTrack-style trackers use low-score boxes in a second
association round. A box starts a track, and is matched in the first round, from score {CONFIDENT_SCORE} (or --conf
if higher): where the detector is more likely right than wrong (--track-thresh, --high-thresh).

Outputs: the annotated video (boxes coloured by identity, "#id class score" and a short trail) in
--save-dir; --mot-out writes MOTChallenge rows (frame,id,x,y,w,h,score,-1,-1,-1), to a .txt file
for one SOURCE or to a folder of SEQUENCE.txt; --json-out writes one record per frame, the
detections' JSON with "track_id". Ctrl-C keeps what was done: a playable video of the frames done
and every row of those frames; the exit status is then 130. Every output is checked before the
first frame; one that still cannot be written (a full disk) stops the run with status 2, and
--json-out keeps the records of the frames done.

Trackers (--tracker): bytetrack (default), botsort (with camera motion compensation), ocsort, sort,
from the `trackers` library, and iou, the naive frame-to-frame IoU baseline. They need
`pip install "yoloxkit[track]" && pip install --no-deps "trackers>=2.6,<2.7"` (docs/tracking.md).

""" + STREAM_HELP + """ Files and folders run first, then
the streams together, each with its own tracker, counting line and outputs (named after the
stream's host, port and path).
"""

EVAL_DESCRIPTION = """\
Score tracker output against ground truth with the MOTChallenge metrics (the `trackers` library's
CLEAR, Identity and HOTA, matched as TrackEval does): MOTA, IDF1, HOTA, DetA, AssA, ID switches,
false positives and false negatives, per sequence and combined.

--gt is a MOTChallenge folder (SEQ/gt/gt.txt, with SEQ/seqinfo.ini), a folder of SEQ.txt, one
sequence folder or one file. --pred is a folder of SEQ.txt (as `track --mot-out DIR` writes) or
one file. Ground-truth rows marked 0 in column 7, or of a class other than 1, are not scored.
"""

DEFAULT_SAVE_DIR = "runs/track"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("track", help="detect and track objects through videos, webcams or frame folders",
                              description=TRACK_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="video file, webcam index, folder of frames or stream URL")
    add_detector_options(p, conf=DEFAULT_TRACK_CONF)
    add_stream_options(p)
    p.add_argument("--tracker", default=DEFAULT_TRACKER, choices=TRACKER_NAMES,
                   help=f"tracker (default {DEFAULT_TRACKER})")
    p.add_argument("--track-thresh", type=unit_float,
                   help=f"score that starts a track (default {CONFIDENT_SCORE}, or --conf if higher; iou: 0.25)")
    p.add_argument("--high-thresh", type=unit_float,
                   help="score splitting the first (high) and second (low) association (bytetrack, botsort, ocsort; "
                        f"default {CONFIDENT_SCORE}, or --conf if higher)")
    p.add_argument("--match-thresh", type=unit_float, help="lowest IoU of a match (default: the tracker's)")
    p.add_argument("--track-buffer", type=int, help="frames (at 30 fps) a lost track is kept (default 30)")
    p.add_argument("--min-hits", type=int, help="matched frames before a track gets its id (default: the tracker's)")
    p.add_argument("--count-line", metavar="X1,Y1,X2,Y2",
                   help="count tracks crossing this line (pixels), per class, in and out: drawn on the video, "
                        "in the --json-out records and the summary line (in: from the right of the line to its "
                        "left, walking from X1,Y1 to X2,Y2; the video's arrow points in)")
    p.add_argument("--per-class", action="store_true",
                   help="track every class on its own: a track never changes class (default: class-agnostic)")
    p.add_argument("--fps", type=positive_float, help="frame rate of a folder of frames (default: seqinfo.ini, else 30)")
    p.add_argument("--save-dir", default=DEFAULT_SAVE_DIR, help=f"folder for annotated videos (default {DEFAULT_SAVE_DIR})")
    p.add_argument("--no-save", action="store_true", help="do not write annotated videos")
    p.add_argument("--mot-out", metavar="PATH", help="MOTChallenge rows: a .txt file (one SOURCE) or a folder")
    p.add_argument("--json-out", metavar="FILE", help="write one JSON record per frame (a list)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_track)

    e = subparsers.add_parser("track-eval", help="MOTA, IDF1 and HOTA of tracker output against ground truth",
                              description=EVAL_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--gt", required=True, help="ground truth: MOTChallenge folder, folder of SEQ.txt, or a file")
    e.add_argument("--pred", required=True, help="tracker output: folder of SEQ.txt, or a file")
    e.add_argument("--iou", type=unit_float, default=0.5, help="IoU of a match for CLEAR and IDF1 (default 0.5)")
    e.add_argument("--json-out", metavar="FILE", help="write the scores as JSON")
    e.set_defaults(func=run_track_eval)


def _mot_paths(mot_out: str | None, names: list[str]) -> list[Path | None]:
    from ..errors import TrackingError

    if mot_out is None:
        return [None] * len(names)
    target = Path(mot_out)
    if target.suffix.lower() == ".txt" and not target.is_dir():
        if len(names) > 1:
            raise TrackingError(f"--mot-out {mot_out} is one file for {len(names)} sources: give a folder")
        return [target]
    return [target / f"{name}.txt" for name in names]


def _check_outputs(args: argparse.Namespace, mot_paths: list[Path | None]) -> None:
    """Every output of the run can be written: checked before any frame runs."""
    from ..io import check_writable, check_writable_dir

    if args.json_out:
        check_writable(args.json_out, "--json-out")
    if args.mot_out and len(mot_paths) == 1 and mot_paths[0] == Path(args.mot_out):
        check_writable(args.mot_out, "--mot-out")
    elif args.mot_out:
        check_writable_dir(args.mot_out, "--mot-out")
    if not args.no_save:
        check_writable_dir(args.save_dir, "--save-dir")


def _track_files(args, tracker, sequences, mot_paths, records, make_counter) -> tuple[int, Exception | None]:
    """Track the files and folders one after the other: the exit status so far and the output
    error that stopped the run (a full disk), if any."""
    from ..errors import OutputError
    from ..tracking import track_sequence

    for frames, mot_path in zip(sequences, mot_paths):
        video = None if args.no_save else Path(args.save_dir) / f"{frames.name}.mp4"
        try:
            run = track_sequence(tracker, frames, video_path=video, mot_path=mot_path, records=records,
                                 progress=not args.no_progress, counter=make_counter())
        except OutputError as exc:  # a full disk: the records of the frames done are still written
            return 2, exc
        print(run.describe(), flush=True)
        if run.interrupted:
            return 130, None
    return 0, None


def _track_stream_sources(args, detector, make_tracker, streams, mot_paths, records, make_counter) -> int:
    """Track the live streams together; print a line per stream and one per stream given up."""
    from ..tracking.stream_run import track_streams

    done = track_streams(detector, make_tracker, streams, stream_settings(args),
                         video_dir=None if args.no_save else args.save_dir, mot_paths=mot_paths, records=records,
                         make_counter=make_counter, progress=not args.no_progress, max_frames=args.max_frames)
    for run in done.runs:
        print(run.describe(), flush=True)
    for _, failure in done.failures:
        print(f"error: {failure}", file=sys.stderr, flush=True)
    return 130 if done.interrupted else 2 if done.failures else 0


def run_track(args: argparse.Namespace) -> int:
    from ..errors import TrackingError
    from ..infer.classes import split_names
    from ..infer.sources import Source
    from ..infer.stream_urls import check_stream_url
    from ..io import atomic_write_json_records
    from ..tracking import LineCounter, Tracker, open_frames, parse_count_line

    line = parse_count_line(args.count_line) if args.count_line else None
    streams = [Source("stream", url=check_stream_url(s)) for s in args.sources if "://" in s]
    sequences = [open_frames(s, fps=args.fps).strided(args.vid_stride)  # a bad source fails before any work
                 for s in args.sources if "://" not in s]
    names = [s.name for s in sequences] + [s.name for s in streams]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TrackingError(f"two sources are both called {twice[0]}: their outputs would overwrite each other")
    mot_paths = _mot_paths(args.mot_out, names)
    _check_outputs(args, mot_paths)
    settings = {k: getattr(args, k) for k in ("track_thresh", "high_thresh", "match_thresh", "track_buffer", "min_hits")}
    detector = build_detector(args)

    def make_tracker(frame_rate: float | None) -> Tracker:
        return Tracker(detector, args.tracker, frame_rate=frame_rate, per_class=args.per_class,
                       classes=split_names(args.classes) if args.classes else None,
                       **{k: v for k, v in settings.items() if v is not None})

    print(detector.describe(), flush=True)
    tracker = make_tracker(None)  # the files' (each stream gets its own, at its frame rate)
    print(repr(tracker), flush=True)
    make_counter = (lambda: LineCounter(line, detector.names)) if line is not None else (lambda: None)
    records: list[dict] | None = [] if args.json_out else None
    code, failed = _track_files(args, tracker, sequences, mot_paths[:len(sequences)], records, make_counter)
    if code == 0 and streams:
        code = _track_stream_sources(args, detector, make_tracker, streams,
                                     dict(zip(names[len(sequences):], mot_paths[len(sequences):])), records,
                                     make_counter)
    if args.json_out:
        atomic_write_json_records(records, args.json_out, what="--json-out")
        print(f"wrote {len(records)} frame records to {args.json_out}", flush=True)
    if failed is not None:
        kept = f"; the records of the frames done were written to {args.json_out}" if args.json_out else ""
        print(f"error: {failed}{kept}", file=sys.stderr)
    if code == 130:
        print("interrupted: the outputs hold the frames done", file=sys.stderr)
    return code


def run_track_eval(args: argparse.Namespace) -> int:
    from ..tracking.metrics import evaluate_tracking, write_report_json

    if args.json_out:
        from ..io import check_writable

        check_writable(args.json_out, "--json-out")
    report = evaluate_tracking(args.gt, args.pred, iou=args.iou)
    print(report.table())
    if args.json_out:
        write_report_json(report, args.json_out)
        print(f"wrote scores to {args.json_out}")
    return 0
