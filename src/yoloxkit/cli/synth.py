"""``make-small-objects``: a thin layer over :func:`yoloxkit.synth.make_small_object_set`."""

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


def run_make_small_objects(args: argparse.Namespace) -> int:
    from ..synth import make_small_object_set

    count = args.count[0] if len(args.count) == 1 else args.count
    done = make_small_object_set(
        args.source, args.split, args.out, sizes=args.sizes, count=count, objects_per_image=args.objects_per_image,
        object_size=args.object_size, seed=args.seed, progress=not args.no_progress,
        image_format="png" if args.png else "jpg",
    )
    print(done.describe())
    return 0
