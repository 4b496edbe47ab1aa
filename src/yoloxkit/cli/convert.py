"""``yoloxkit convert SRC DST.pth``: an ONNX export or a ``.pth`` checkpoint -> a yoloxkit checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import WeightsError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official ONNX export or .pth checkpoint into a yoloxkit checkpoint",
        description=(
            "Convert an official YOLOX ONNX export (BatchNorm folded; the BatchNorm statistics are "
            "re-calibrated on real images), a .pth checkpoint or a zoo model's COCO weights (SRC yolox-s: "
            "bundled for nano, the official download otherwise) into a checkpoint "
            '{"model": state_dict, "names": [...], "model_name": ...} with the official key names.'
        ),
    )
    parser.add_argument("source", type=Path, metavar="SRC",
                        help="path or zoo name (yolox-s: bundled for nano, the official download otherwise);"
                        " a path is an .onnx export or a .pth checkpoint")
    parser.add_argument("destination", type=Path, metavar="DST", help="the checkpoint to write (.pth)")
    parser.add_argument(
        "--model", default=None, help="model name (default: named by or stored in SRC, or guessed from its layer shapes)"
    )
    parser.add_argument(
        "--calib-images",
        nargs="+",
        default=None,
        metavar="DIR_OR_FILE",
        help="images or folders to calibrate BatchNorm on when SRC is ONNX "
        "(default: variations of the bundled demo picture; use images from your data)",
    )
    parser.add_argument(
        "--names",
        type=Path,
        default=None,
        help="class names: a text file with one per line, or a JSON/YAML list "
        "(default: the names stored in SRC, else COCO names for 80 classes)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import check_writable
    from ..weights import convert_weights, describe_weights, format_of, read_names_file

    if format_of(args.destination).name == "onnx":
        raise WeightsError(f"destination {args.destination} must be a .pth checkpoint, not .onnx")
    if args.destination.resolve() == args.source.resolve():
        raise WeightsError(f"destination {args.destination} is the source file; choose another path")
    check_writable(args.destination, "destination")
    names = read_names_file(args.names) if args.names is not None else None
    convert_weights(args.source, args.destination, args.model, args.calib_images, names)
    info = describe_weights(args.destination)
    print(f"wrote {args.destination}: {info.model_name}, {info.num_classes} classes")
    return 0
