"""The detector options ``predict`` and ``track`` share, and the ``Detector`` they build."""

from __future__ import annotations

import argparse

from .argtypes import WEIGHTS_HELP, add_slice_options, positive_int, slice_options, unit_float

__all__ = ["add_detector_options", "build_detector", "SLICE_BATCH"]

#: tiles per network call with --slice when --batch-size is not given
SLICE_BATCH = 8


def add_detector_options(p: argparse.ArgumentParser, conf: float = 0.25) -> None:
    """``--model --weights --size --conf --nms --nms-free --max-dets --device --backend
    --classes --batch-size`` and the slicing options; ``conf`` is the default score threshold."""
    p.add_argument("--model", help="model name (default: named by or read from --weights, else yolox-nano)")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--size", type=positive_int, help="input size, a multiple of 32 (default: the model's)")
    p.add_argument("--conf", type=unit_float, default=conf, help=f"score threshold (default {conf})")
    p.add_argument("--nms", type=unit_float, help="NMS IoU threshold (default 0.45; ignored by NMS-free -e2e models)")
    p.add_argument("--nms-free", action=argparse.BooleanOptionalAction, default=None,
                   help="top-k without NMS (default: for end-to-end -e2e models); --no-nms-free: NMS on any model")
    p.add_argument("--max-dets", type=positive_int, default=100,
                   help="NMS-free: detections kept per image (default 100)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--backend", help="torch (default), onnxruntime or openvino; .onnx weights default to onnxruntime")
    p.add_argument("--classes", nargs="+", metavar="NAME",
                   help="keep only these classes (names or ids; also comma-separated)")
    p.add_argument("--batch-size", type=positive_int,
                   help="images per inference batch (default 1); with --slice, tiles per batch (default 8)")
    add_slice_options(p)


def build_detector(args: argparse.Namespace):
    """The :class:`~yoloxkit.Detector` of the parsed detector options."""
    from ..infer import Detector

    options = {"weights": args.weights, "size": args.size, "backend": args.backend, "nms": args.nms,
               "nms_free": args.nms_free}
    return Detector(
        args.model, conf=args.conf, device=args.device, max_dets=args.max_dets,
        batch_size=args.batch_size or (SLICE_BATCH if args.slice else 1),
        **{k: v for k, v in options.items() if v is not None}, **slice_options(args),
    )
