"""``yoloxkit predict``: detect objects in images, folders, videos and webcams."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .argtypes import WEIGHTS_HELP, positive_int, unit_float

DESCRIPTION = """\
Detect objects in images, folders of images, video files and webcams.

SOURCE is an image file, a folder (all images inside, sorted), a video file (.mp4, .avi, .mov,
.mkv, ...) or a webcam index such as 0. Each image gets one line listing what was found; the
annotated pictures and videos go to --save-dir, and --json-out writes every result as JSON
(video frames carry a "frame" index). --weights takes a file or a zoo name (--weights yolox-s);
without --model and --weights the bundled yolox-nano COCO weights are used; --demo runs on the
bundled demo picture.
"""

DEFAULT_SAVE_DIR = "runs/predict"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="detect objects in images, folders, videos or a webcam", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image, folder, video file or webcam index")
    p.add_argument("--model", help="model name (default: named by or read from --weights, else yolox-nano)")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--size", type=positive_int, help="input size, a multiple of 32 (default: the model's)")
    p.add_argument("--conf", type=unit_float, default=0.25, help="score threshold (default 0.25)")
    p.add_argument("--nms", type=unit_float, default=0.45, help="NMS IoU threshold (default 0.45)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--backend", help="torch (default), onnxruntime or openvino; .onnx weights default to onnxruntime")
    p.add_argument("--classes", nargs="+", metavar="NAME",
                   help="keep only these classes (names or ids; also comma-separated)")
    p.add_argument("--save-dir", default=DEFAULT_SAVE_DIR,
                   help=f"folder for annotated images and videos (default {DEFAULT_SAVE_DIR})")
    p.add_argument("--no-save", action="store_true", help="do not write annotated images or videos")
    p.add_argument("--json-out", metavar="FILE", help="write all detections to this JSON file (a list)")
    p.add_argument("--batch-size", type=positive_int, default=1, help="images per inference batch (default 1)")
    p.add_argument("--demo", action="store_true", help="run on the bundled demo picture")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
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


def _predict_images(detector, sources, classes, output_names, batch_size: int, progress: bool) -> list[dict]:
    """Detect in image files batch by batch; print one line per image; return their JSON."""
    from tqdm import tqdm

    records = []
    with tqdm(total=len(sources), desc="images", unit="img", disable=not progress or len(sources) < 2,
              leave=False) as bar:
        for start in range(0, len(sources), batch_size):
            chunk = sources[start : start + batch_size]
            results = detector.predict([s.path for s in chunk], classes=classes)
            for source, det in zip(chunk, results):
                line = f"{source.name}: {_summary(det)}"
                if output_names is not None:
                    out_path = output_names(source.name, _image_suffix(source.path))
                    _write_image(out_path, det.plot())
                    line += f" -> {out_path}"
                records.append(det.to_json())
                tqdm.write(line)
            bar.update(len(chunk))
    return records


def _predict_video(detector, source, classes, output_names, batch_size: int, progress: bool) -> list[dict]:
    """Detect in every frame of a video or webcam; print a summary line; return per-frame JSON."""
    from tqdm import tqdm

    from ..infer.video import predict_video

    save_path = output_names(source.name, ".mp4") if output_names is not None else None
    frames, _ = predict_video(
        lambda arrays: detector.predict_arrays(arrays, classes=classes),
        source, save_path=save_path, batch_size=batch_size, progress=progress,
    )
    found = sum(len(d) for d in frames)
    where = f" -> {save_path}" if save_path is not None else ""
    tqdm.write(f"{source.name}: {len(frames)} frames, {found} detections{where}")
    return [{**det.to_json(), "frame": index} for index, det in enumerate(frames)]


def run(args: argparse.Namespace) -> int:
    from ..errors import YoloxkitError
    from ..infer import Detector
    from ..infer.sources import expand_sources
    from ..io import atomic_write_text
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

    options = {"weights": args.weights, "size": args.size, "backend": args.backend}
    detector = Detector(
        args.model, conf=args.conf, nms=args.nms, device=args.device,
        batch_size=args.batch_size, **{k: v for k, v in options.items() if v is not None},
    )
    classes = _classes(args.classes)
    detector.resolve_classes(classes)  # an unknown class name fails before any work
    save_dir = None if args.no_save else Path(args.save_dir)
    output_names = _OutputNames(save_dir) if save_dir is not None else None
    records: list[dict] = []
    progress = not args.no_progress
    for run_sources in _consecutive_runs(sources):
        if run_sources[0].kind == "image":
            records.extend(_predict_images(detector, run_sources, classes, output_names, args.batch_size, progress))
        else:
            for source in run_sources:
                records.extend(_predict_video(detector, source, classes, output_names, args.batch_size, progress))
    if args.json_out:
        atomic_write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n", args.json_out)
        print(f"wrote {len(records)} results to {args.json_out}")
    sys.stdout.flush()
    return 0
