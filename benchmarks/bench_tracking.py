"""Tracking: accuracy of every tracker (and the naive IoU baseline) on generated sequences, and
what the tracker adds to the per-frame time of detection.

The sequences come from ``../shared/data/coco-mini`` val2017 through ``make_tracking_set``
(default: 10 sequences of 40 frames at 640x480, seed 0: pans, zooms, objects entering and
leaving, an occluder each). The bundled yolox-nano at 416 (torch, CPU, conf 0.1) detects every
frame once; every tracker then runs on the same detections, so accuracy differences are the
trackers' own. Each tracker runs with ``track``'s defaults, and the library trackers once more
with the thresholds ``track`` had before (the library's own, "before"). ``--split train2017
--seed 1`` makes the second set of docs/tracking.md (other images, other seed). Scores are the ``trackers`` library's MOTA, IDF1 and HOTA (TrackEval matching).

Timing: per frame, the detector's ``predict_arrays`` (letterbox, network, NMS) and the tracker's
``update_detections`` (BoT-SORT also gets the frame, for its camera motion estimate), both with
``time.perf_counter``; medians over all frames. The share is tracker / detection.

    .venv/bin/python benchmarks/bench_tracking.py                 # about a minute
    .venv/bin/python benchmarks/bench_tracking.py --split train2017 --seed 1
    .venv/bin/python benchmarks/bench_tracking.py --set DIR --dump DIR
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from yoloxkit import Detector, Tracker
from yoloxkit.data.mot_sequence import sequence_frames
from yoloxkit.imaging import read_image
from yoloxkit.synth import make_tracking_set
from yoloxkit.tracking import TRACKER_NAMES, evaluate_tracking, load_ground_truth, tracks_table, write_mot

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "coco-mini"


def detect_all(detector: Detector, set_dir: Path, names: list[str]) -> tuple[dict, dict, list[float]]:
    """Frames and detections per sequence, and the detection time of every frame."""
    frames, detections, seconds = {}, {}, []
    for name in names:
        frames[name] = [read_image(p) for p in sequence_frames(set_dir / name)]
        detections[name] = []
        for frame in frames[name]:
            start = time.perf_counter()
            found = detector.predict_arrays([frame])[0]
            seconds.append(time.perf_counter() - start)
            detections[name].append(found)
    return frames, detections, seconds


#: the thresholds of ``track`` before issue 30: the ``trackers`` library's own (ByteTrack's MOT17 values)
LIBRARY_THRESHOLDS = {"bytetrack": {"track_thresh": 0.7, "high_thresh": 0.6},
                      "botsort": {"track_thresh": 0.7, "high_thresh": 0.6},
                      "ocsort": {"high_thresh": 0.6}, "sort": {"track_thresh": 0.7}}


def track_all(name: str, frames: dict, detections: dict, **settings: float) -> tuple[dict, list[float]]:
    """The MOT table per sequence for tracker ``name`` (its defaults, or ``settings``), and its
    time per frame."""
    tables, seconds = {}, []
    for sequence, found in detections.items():
        tracker = Tracker(None, name, **settings)
        results = []
        for frame, dets in zip(frames[sequence], found):
            start = time.perf_counter()
            results.append(tracker.update_detections(dets, frame))
            seconds.append(time.perf_counter() - start)
        tables[sequence] = tracks_table(results)
    return tables, seconds


def end_to_end(detector: Detector, name: str, frames: dict, sequences: list[str]) -> tuple[float, float]:
    """Median ms per frame of detection alone and of ``Tracker.update`` (detection + tracking),
    timed on the same frames in turn (which goes first alternates), so that machine load and
    cache effects hit both alike."""
    alone, tracked = [], []
    for sequence in sequences:
        tracker = Tracker(detector, name)
        for index, frame in enumerate(frames[sequence]):
            for step in ((0, 1) if index % 2 == 0 else (1, 0)):
                start = time.perf_counter()
                if step == 0:
                    detector.predict_arrays([frame])
                    alone.append(time.perf_counter() - start)
                else:
                    tracker.update(frame)
                    tracked.append(time.perf_counter() - start)
    return 1000 * float(np.median(alone)), 1000 * float(np.median(tracked))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, help="a generated set (default: generate one in a temporary folder)")
    parser.add_argument("--split", default="val2017", help="coco-mini split the generated set is made from")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated set")
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dump", type=Path, help="write each tracker's MOT files to DIR/TRACKER/SEQ.txt")
    parser.add_argument("--e2e-sequences", type=int, default=5,
                        help="sequences for the end-to-end timing of detection alone against Tracker.update")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        set_dir = args.set
        if set_dir is None:
            set_dir = Path(tmp) / "set"
            made = make_tracking_set(DATA, args.split, set_dir, sequences=args.sequences, frames=args.frames,
                                     seed=args.seed, progress=False)
            print(made.describe())
        names = list(load_ground_truth(set_dir))
        detector = Detector(size=args.size, conf=0.1)
        frames, detections, detect_seconds = detect_all(detector, set_dir, names)
        detect_ms = 1000 * float(np.median(detect_seconds))
        print(f"machine: {platform.processor() or platform.machine()}, {args.threads} threads; torch {torch.__version__}, "
              f"trackers {metadata.version('trackers')}")
        print(f"{detector.describe()}; {len(detect_seconds)} frames, detection median {detect_ms:.2f} ms/frame\n")
        header = (f"{'tracker':<19} {'MOTA':>6} {'IDF1':>6} {'HOTA':>6} {'IDSW':>5} {'FP':>5} {'FN':>5} "
                  f"{'ms/frame':>9} {'of detection':>12}")
        print(header)
        print("-" * len(header))
        runs = [(name, name, {}) for name in TRACKER_NAMES]
        runs += [(f"{name} (before)", name, settings) for name, settings in LIBRARY_THRESHOLDS.items()]
        for label, name, settings in runs:
            tables, seconds = track_all(name, frames, detections, **settings)
            if args.dump is not None:
                for sequence, table in tables.items():
                    write_mot(args.dump / label.replace(" ", "_") / f"{sequence}.txt", table)
            c = evaluate_tracking(set_dir, tables).combined
            ms = 1000 * float(np.median(seconds))
            print(f"{label:<19} {100 * c.mota:6.2f} {100 * c.idf1:6.2f} {100 * c.hota:6.2f} {c.idsw:5d} {c.fp:5d} "
                  f"{c.fn:5d} {ms:9.3f} {100 * ms / detect_ms:11.2f}%")
        subset = names[: args.e2e_sequences]
        print(f"\nend to end, {sum(len(frames[n]) for n in subset)} frames, detection alone and Tracker.update in turn")
        print(f"{'tracker':<10} {'detect ms':>10} {'detect+track ms':>16} {'added':>7}")
        for name in TRACKER_NAMES:
            alone, tracked = end_to_end(detector, name, frames, subset)
            print(f"{name:<10} {alone:10.2f} {tracked:16.2f} {100 * (tracked / alone - 1):6.2f}%")


if __name__ == "__main__":
    main()
