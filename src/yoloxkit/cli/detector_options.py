"""The detector options ``predict``, ``track`` and ``serve`` share, and the one ``build_detector``
that turns them into a :class:`~yoloxkit.Detector` (the Python API, nothing of its own)."""

from __future__ import annotations

import argparse

from ..infer.backends import backend_names
from ..infer.defaults import DEFAULT_CONF, DEFAULT_MAX_DETS, DEFAULT_NMS
from .argtypes import WEIGHTS_HELP, add_slice_options, positive_int, slice_options, unit_float

__all__ = [
    "add_detector_options", "detector_keywords", "build_detector", "SLICE_BATCH", "NMS_HELP", "NMS_FREE_HELP",
    "BACKEND_HELP",
]

#: tiles per network call with --slice when --batch-size is not given
SLICE_BATCH = 8
#: the --nms help of every command that runs a model
NMS_HELP = f"NMS IoU threshold (default {DEFAULT_NMS}; ignored by NMS-free -e2e models)"
NMS_FREE_HELP = "top-k without NMS (default: for end-to-end -e2e models); --no-nms-free: NMS on any model"
#: the --backend help (with ``choices=backend_names()``, which argparse lists)
BACKEND_HELP = ("inference backend (default: the one that runs --weights as is: torch for .pth and TorchScript,"
                " onnxruntime for .onnx, openvino for .xml)")
# Detector keywords read from the options of the same name when a command defines and sets them.
_KEYWORDS = ("weights", "size", "conf", "nms", "nms_free", "max_dets", "device", "backend")


def add_detector_options(p: argparse.ArgumentParser, conf: float = DEFAULT_CONF) -> None:
    """``--model --weights --size --conf --nms --nms-free --max-dets --device --backend
    --classes --batch-size`` and the slicing options; ``conf`` is the default score threshold."""
    p.add_argument("--model", help="model name (default: named by or read from --weights, else yolox-nano)")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--size", type=positive_int, help="input size, a multiple of 32 (default: the model's)")
    p.add_argument("--conf", type=unit_float, default=conf, help=f"score threshold (default {conf})")
    p.add_argument("--nms", type=unit_float, help=NMS_HELP)
    p.add_argument("--nms-free", action=argparse.BooleanOptionalAction, default=None, help=NMS_FREE_HELP)
    p.add_argument("--max-dets", type=positive_int, default=DEFAULT_MAX_DETS,
                   help=f"NMS-free: detections kept per image (default {DEFAULT_MAX_DETS})")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    # No choices here: an unknown name is the Detector's error, which lists the registered backends.
    p.add_argument("--backend", help=f"{BACKEND_HELP}; one of {', '.join(backend_names())}")
    p.add_argument("--classes", nargs="+", metavar="NAME",
                   help="keep only these classes (names or ids; also comma-separated)")
    p.add_argument("--batch-size", type=positive_int,
                   help="images per inference batch (default 1); with --slice, tiles per batch (default 8)")
    add_slice_options(p)


def detector_keywords(args: argparse.Namespace) -> dict:
    """The ``Detector`` keywords of the parsed options; an option the command does not define, or
    leaves unset, keeps the Detector's default. ``--batch-size`` unset is 1 image (8 tiles with
    --slice) where the command defines it."""
    keywords = {name: getattr(args, name) for name in _KEYWORDS if getattr(args, name, None) is not None}
    if hasattr(args, "batch_size"):
        keywords["batch_size"] = args.batch_size or (SLICE_BATCH if args.slice else 1)
    return {**keywords, **slice_options(args)}


def build_detector(args: argparse.Namespace):
    """The :class:`~yoloxkit.Detector` of the parsed detector options (without ``--model`` the
    model is the one ``--weights`` names or stores, else the bundled yolox-nano)."""
    from ..infer import Detector

    return Detector.from_pretrained(args.model, **detector_keywords(args))
