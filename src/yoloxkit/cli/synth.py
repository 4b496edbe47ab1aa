"""``make-small-objects`` and ``make-tracking-set``: thin layers over
:func:`yoloxkit.synth.make_small_object_set` and :func:`yoloxkit.synth.make_tracking_set`."""

from __future__ import annotations

import argparse


def _int_list(text: str, sep: str, what: str) -> list[int]:
    try:
        return [int(part) for part in text.split(sep)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def image_sizes(text: str) -> list[tuple[int, int]]:
    """``1920x1080,3840x2160`` -> ``[(1920, 1080), (3840, 2160)]``."""
    sizes = []
    for part in text.split(","):
        values = _int_list(part.strip().lower(), "x", "WIDTHxHEIGHT[,WIDTHxHEIGHT...]")
        if len(values) != 2 or min(values) < 1:
            raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT[,WIDTHxHEIGHT...], got {text!r}")
        sizes.append((values[0], values[1]))
    return sizes


def one_size(text: str) -> tuple[int, int]:
    """``640x480`` -> ``(640, 480)`` (exactly one size)."""
    sizes = image_sizes(text)
    if len(sizes) != 1:
        raise argparse.ArgumentTypeError(f"expected one WIDTHxHEIGHT, got {text!r}")
    return sizes[0]


def int_range(text: str) -> tuple[int, int]:
    """``12-64`` -> ``(12, 64)``; a single number N is ``(N, N)``."""
    values = _int_list(text, "-", "LOW-HIGH")
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or values[0] < 0 or values[1] < values[0]:
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH with 0 <= LOW <= HIGH, got {text!r}")
    return values[0], values[1]


def counts(text: str) -> list[int]:
    """``16`` or ``16,8`` (one count per size)."""
    values = _int_list(text, ",", "N or N,N,... (one per size)")
    if any(v < 0 for v in values) or sum(values) < 1:
        raise argparse.ArgumentTypeError(f"expected image counts >= 0 with at least one image, got {text!r}")
    return values


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "make-small-objects", help="generate a large-image small-object evaluation set from a COCO dataset",
        description="Write a COCO dataset of large images: up-scaled images of SOURCE's split (their own "
                    "objects become large ones) with small objects cut out of other images of the split "
                    "(by their masks) pasted at random free places. Ground truth is exact: tight mask boxes "
                    "and mask areas. Deterministic from --seed.")
    p.add_argument("--source", required=True, help="COCO dataset directory with instance masks")
    p.add_argument("--split", default="val2017", help="source split (default val2017); the output split has its name")
    p.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    p.add_argument("--sizes", type=image_sizes, default=[(1920, 1080), (3840, 2160)],
                   help="image sizes WIDTHxHEIGHT, comma-separated (default 1920x1080,3840x2160)")
    p.add_argument("--count", type=counts, default=[16],
                   help="images per size: one number for every size, or one per size like 16,8 (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--object-size", type=int_range, default=(12, 64),
                   help="longest side of a pasted object in pixels, LOW-HIGH (default 12-64)")
    p.add_argument("--objects-per-image", type=int_range, default=(20, 40),
                   help="objects pasted per image, LOW-HIGH (default 20-40)")
    p.add_argument("--png", action="store_true", help="write lossless PNG images instead of JPEG (quality 95)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_make_small_objects)

    p = subparsers.add_parser(
        "make-tracking-set",
        help="generate short multi-object-tracking sequences (MOTChallenge layout) from a COCO dataset",
        description="Write MOTChallenge-layout sequences SYN-01.. with known identities: an image of SOURCE's "
                    "split seen through a panning or zooming camera (its objects move with the view), objects "
                    "cut out of other images crossing it, and an occluder in front. gt/gt.txt rows are "
                    "frame,id,x,y,w,h,mark,class,visibility (class 1; mark 0 below 0.25 visibility). "
                    "Deterministic from --seed.")
    p.add_argument("--source", required=True, help="COCO dataset directory with instance masks")
    p.add_argument("--split", default="val2017", help="source split (default val2017)")
    p.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    p.add_argument("--sequences", type=int, default=10, help="number of sequences (default 10)")
    p.add_argument("--frames", type=int, default=40, help="frames per sequence, at least 2 (default 40)")
    p.add_argument("--frame-size", type=one_size, default=(640, 480), help="frame size WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--moving-objects", type=int_range, default=(1, 3),
                   help="cut-outs crossing each sequence, LOW-HIGH (default 1-3)")
    p.add_argument("--no-occluders", action="store_true", help="no occluder in front of the objects")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_make_tracking_set)


def run_make_small_objects(args: argparse.Namespace) -> int:
    from ..io import check_writable_dir
    from ..synth import make_small_object_set

    check_writable_dir(args.out, "--out")
    count = args.count[0] if len(args.count) == 1 else args.count
    done = make_small_object_set(
        args.source, args.split, args.out, sizes=args.sizes, count=count, objects_per_image=args.objects_per_image,
        object_size=args.object_size, seed=args.seed, progress=not args.no_progress,
        image_format="png" if args.png else "jpg",
    )
    print(done.describe())
    return 0


def run_make_tracking_set(args: argparse.Namespace) -> int:
    from ..io import check_writable_dir
    from ..synth import make_tracking_set

    check_writable_dir(args.out, "--out")
    done = make_tracking_set(
        args.source, args.split, args.out, sequences=args.sequences, frames=args.frames, frame_size=args.frame_size,
        seed=args.seed, progress=not args.no_progress, moving_objects=args.moving_objects,
        occluders=not args.no_occluders,
    )
    print(done.describe())
    return 0
