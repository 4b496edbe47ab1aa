"""``check-data``, ``show-batch`` and ``convert-dataset``: thin layers over :mod:`yoloxkit.data`."""

from __future__ import annotations

import argparse

from ..data.formats import format_names
from ..data.writing import LINK_MODES


def register(subparsers) -> None:
    p = subparsers.add_parser("check-data", help="report classes, boxes and problems of a dataset",
                              description="Read every split of a COCO, VOC or YOLO-txt dataset and report images "
                                          "and boxes per class, images without labels, broken boxes, missing or "
                                          "corrupt images and class ids outside the names. Exit code 1 if there "
                                          "are errors.")
    p.add_argument("--data", required=True, help="dataset directory (layout auto-detected) or data YAML")
    p.add_argument("--split", help="check only this split (name or unique prefix)")
    p.add_argument("--names", help="class names: a .txt/.json/.yaml file or a comma-separated list")
    p.add_argument("--quick", action="store_true", help="read image headers only (does not catch truncated files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_check)

    p = subparsers.add_parser("show-batch", help="write a PNG grid of augmented training images",
                              description="Draw augmented training samples (Mosaic, MixUp, affine, HSV, flip as "
                                          "training would apply them) with their boxes and class names.")
    p.add_argument("--data", required=True, help="dataset directory or data YAML")
    p.add_argument("--split", help="training split (default: the unique split starting with 'train')")
    p.add_argument("--names", help="class names: a .txt/.json/.yaml file or a comma-separated list")
    p.add_argument("--model", default="yolox-s", help="model whose augmentation defaults to use (default yolox-s)")
    p.add_argument("--size", type=int, help="input size (default: the model's)")
    p.add_argument("--count", type=int, default=16, help="number of samples (default 16)")
    p.add_argument("--seed", type=int, default=0, help="augmentation seed (default 0)")
    p.add_argument("--epoch", type=int, default=0, help="epoch whose samples to draw (default 0)")
    p.add_argument("--no-mosaic", action="store_true", help="without Mosaic/MixUp (the last epochs)")
    p.add_argument("--no-aug", action="store_true", help="without any augmentation")
    p.add_argument("--out", default="batch.png", help="output PNG (default batch.png)")
    p.set_defaults(func=run_show_batch)

    p = subparsers.add_parser("convert-dataset", help="convert a dataset between COCO, VOC and YOLO-txt",
                              description="Convert every split of SRC into DST (new or empty directory), keeping "
                                          "split names, class names (in order) and boxes exactly.")
    p.add_argument("src", help="source dataset directory or data YAML")
    p.add_argument("dst", help="destination directory (must not exist or be empty)")
    p.add_argument("--to", required=True, choices=format_names(), help="output format")
    p.add_argument("--names", help="class names for the source: a .txt/.json/.yaml file or a comma-separated list")
    p.add_argument("--link", choices=LINK_MODES, default="copy",
                   help="how images get into DST: copy (default; independent of SRC), hard (hard links: no extra "
                        "space, but editing an image changes the original; copies across devices) or symlink")
    p.set_defaults(func=run_convert)


def run_check(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset, format_report

    report = check_dataset(args.data, split=args.split, names=args.names, decode=not args.quick,
                           progress=not args.no_progress)
    print(format_report(report))
    return 1 if report.errors else 0


def run_show_batch(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..data.augment import AugmentConfig
    from ..data.dataset import TrainingDataset
    from ..data.show_batch import write_batch_grid
    from ..engine.config import training_recipe
    from ..errors import YoloxkitError
    from ..io import check_writable
    from ..models import get_spec

    if args.count < 1:
        raise YoloxkitError(f"--count must be >= 1, got {args.count}")
    spec = get_spec(args.model)
    size = args.size or spec.input_size
    if size < 32 or size % 32:
        raise YoloxkitError(f"--size must be a positive multiple of 32, got {size}")
    check_writable(args.out, "--out")
    data = load_dataset(args.data, split=args.split, default_prefix="train", names=args.names)
    augment = AugmentConfig.off() if args.no_aug else training_recipe(spec.name).augment()
    if args.no_mosaic:
        augment = augment.without_mosaic()
    dataset = TrainingDataset(data, size, augment, seed=args.seed, progress=False)
    dataset.set_epoch(args.epoch)
    out = write_batch_grid(dataset, args.out, count=args.count)
    for message in dataset.warnings:
        print(f"warning: {message}")
    print(f"wrote {out} ({args.count} samples of {data.split}, {size}x{size})")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from ..data.convert import convert_dataset
    from ..io import check_writable_dir

    check_writable_dir(args.dst, "destination")
    done = convert_dataset(args.src, args.dst, args.to, names=args.names, link=args.link)
    splits = done.splits
    print(f"wrote {args.dst} ({args.to}): " + ", ".join(f"{s.split} {len(s.records)} images" for s in splits)
          + f", {done.images} images, {len(splits[0].names)} classes; {done.describe()}")
    return 0
