"""``yoloxkit export``: ONNX (official interface), TorchScript or OpenVINO IR, verified."""

from __future__ import annotations

import argparse

from ..export.options import DEFAULT_OPSET, DEFAULT_TOPK
from ..infer.defaults import DEFAULT_CONF, DEFAULT_MAX_DETS, DEFAULT_NMS
from ..quantize.calibration import DEFAULT_CALIB_COUNT
from ..quantize.onnx_int8 import CALIBRATION_METHODS, INT8_MIN_OPSET, OnnxInt8Recipe
from ..weights.formats import export_format_names, find_format
from .argtypes import WEIGHTS_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX, TorchScript, OpenVINO, ncnn, MNN or LiteRT (verified against PyTorch)",
        description=(
            "Export a YOLOX model for deployment. The default ONNX interface is the official one: input"
            " 'images' [B,3,H,W] (BGR, 0-255, letterboxed), output 'output' [B,A,5+C], undecoded. --decode"
            " decodes boxes in the graph; --nms adds best-class selection and class-aware NMS (ONNX"
            " NonMaxSuppression) with outputs num_dets [B,1], boxes [B,K,4] (xyxy, input pixels),"
            " scores [B,K], class_ids [B,K]. --topk [K] (for end-to-end -e2e models) gives the same outputs"
            " from best class, --conf and TopK, with no NonMaxSuppression node; --nms on an -e2e model"
            " exports that top-k graph (a note says so). Every export is run in its runtime and compared with"
            " PyTorch; the max abs difference is printed. The file stores the model and class names, the"
            " input size and its output kind, so predict, eval, serve, benchmark and Detector run it as is."
            " The edge formats (ncnn, mnn, tflite: docs/deploy.md) hold the network and --decode at batch 1;"
            " their metadata is a .json beside the file, and --half stores fp16 weights."
        ),
    )
    p.add_argument("--model", help="model name: yolox-nano, -tiny, -s, -m, -l, -x, -darknet53, each also -e2e,"
                   " or a roadmap row, yolox-roadmap-baseline ... (docs/roadmap.md; default: the one --weights"
                   " names or stores; give --model or --weights)")
    p.add_argument("--weights", help=WEIGHTS_HELP + " (default: the model's COCO weights)")
    p.add_argument("--format", default="onnx", help=f"one of: {', '.join(export_format_names())} (default onnx)")
    p.add_argument("--size", type=int, help="input size (default: the size the checkpoint was trained at, else"
                   " the model's, 416 or 640)")
    p.add_argument("--batch-size", type=int, default=1, help="static batch size (default 1; see --dynamic)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch and spatial dimensions")
    p.add_argument("--decode", action="store_true", help="decode boxes to input pixels inside the graph")
    p.add_argument("--nms", action="store_true", help="add decoding and class-aware NMS to the graph (on an -e2e"
                   " model: the --topk graph, K = --max-dets)")
    p.add_argument("--topk", type=int, nargs="?", const=DEFAULT_TOPK, metavar="K",
                   help=f"NMS-free graph for -e2e models: decoding, best class, --conf and the top K per image"
                   f" (K default {DEFAULT_TOPK}); outputs as --nms")
    p.add_argument("--opset", type=int, help=f"ONNX opset (default {DEFAULT_OPSET}; {INT8_MIN_OPSET} with --int8)")
    p.add_argument("--conf", type=float, default=DEFAULT_CONF, help="--nms/--topk score threshold, fixed in the graph: running"
                   f" the file with a lower --conf cannot bring back what it drops (default {DEFAULT_CONF:g})")
    p.add_argument("--nms-iou", type=float, default=DEFAULT_NMS, help=f"--nms IoU threshold (default {DEFAULT_NMS:g})")
    p.add_argument("--max-dets", type=int, default=DEFAULT_MAX_DETS, help=f"--nms detections kept per image (default {DEFAULT_MAX_DETS})")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim graph simplification")
    p.add_argument("--half", action="store_true", help="fp16 weights (--format ncnn, mnn, tflite; docs/deploy.md)")
    q = p.add_argument_group("INT8 (--format onnx: onnxruntime QDQ; openvino: NNCF; tflite: ai-edge-quantizer;"
                             " docs/int8.md, docs/deploy.md)")
    q.add_argument("--int8", action="store_true", help="quantise to INT8 after calibration on --calib images;"
                   " the output is compared with float in the same runtime")
    q.add_argument("--calib", metavar="DIR", help="folder of calibration images, searched recursively (default: the"
                   " training images a yoloxkit checkpoint records, if they still exist)")
    q.add_argument("--calib-count", type=int, default=DEFAULT_CALIB_COUNT, metavar="N",
                   help=f"calibration images, spread over the folder (default {DEFAULT_CALIB_COUNT})")
    q.add_argument("--calib-method", choices=CALIBRATION_METHODS, help="onnxruntime's activation calibration"
                   f" (default {OnnxInt8Recipe().method}, chosen by AP; NNCF calibrates its own way)")
    q.add_argument("--val-data", metavar="DIR", help="dataset (COCO, VOC or YOLO) to measure the float and INT8 AP on"
                   " (also the AP of an ncnn, mnn or tflite file against PyTorch float, without --int8)")
    q.add_argument("--val-split", help="split of --val-data (default: the one starting with 'val')")
    q.add_argument("--max-ap-drop", type=float, metavar="X", help="refuse the export (no file written) when INT8 loses"
                   " more than X AP points against float on --val-data (edge formats: the file against PyTorch)")
    p.add_argument("--out", help="output file (default: MODEL[-nms|-topk|-decoded].onnx / .torchscript / _openvino/*.xml)")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> str:
    """The export format, checked with every option before any model is loaded."""
    from ..errors import ExportError

    fmt = args.format.lower()
    formats = export_format_names()
    if fmt not in formats:
        raise ExportError(f"unsupported --format {args.format!r}; choose one of: {', '.join(formats)}")
    edge = find_format(fmt).edge
    if fmt == "openvino":
        from ..optional import import_openvino

        import_openvino()  # fail before any work when openvino is missing
    if edge:
        from ..export.edge import check_edge_options, require_converter
        from ..export.options import ExportOptions

        require_converter(fmt)
        check_edge_options(fmt, ExportOptions(batch=args.batch_size, dynamic=args.dynamic, nms=args.nms, topk=args.topk))
    if args.opset is None:
        args.opset = INT8_MIN_OPSET if args.int8 else DEFAULT_OPSET
    if fmt in ("onnx", "openvino"):
        from ..export.onnx import check_opset

        check_opset(args.opset)
    gate_flags = () if edge else (("--val-data", args.val_data), ("--max-ap-drop", args.max_ap_drop))
    int8_flags = [flag for flag, value in (("--calib", args.calib), ("--calib-method", args.calib_method), *gate_flags)
                  if value is not None]
    if int8_flags and not args.int8:
        raise ExportError(f"{int8_flags[0]} is an --int8 option; add --int8")
    if args.max_ap_drop is not None and args.val_data is None:
        raise ExportError("--max-ap-drop needs --val-data, the split to measure the AP on")
    if args.half and not edge:
        raise ExportError(f"--half is offered for --format ncnn, mnn and tflite, not {fmt}")
    if args.half and args.int8:
        raise ExportError("--half and --int8 exclude each other: choose fp16 weights or INT8")
    for flag, value, ok in (
        ("--batch-size", args.batch_size, args.batch_size >= 1),
        ("--conf", args.conf, 0 <= args.conf <= 1),
        ("--nms-iou", args.nms_iou, 0 <= args.nms_iou <= 1),
        ("--max-dets", args.max_dets, args.max_dets >= 1),
        ("--topk", args.topk, args.topk is None or args.topk >= 1),
    ):
        if not ok:
            raise ExportError(f"invalid {flag} {value}")
    if args.model is None and args.weights is None:
        raise ExportError("give --model NAME or --weights (a path or a zoo name)")
    if args.out is not None:  # the default path is checked by the export itself, before any work
        from ..io import check_writable

        check_writable(args.out, "--out")
    return fmt


def run(args: argparse.Namespace) -> int:
    from ..errors import ExportError
    from ..export import ExportOptions, export_model
    from ..imaging import to_size
    from ..models import get_spec
    from ..weights import open_weights

    fmt = _check_args(args)
    loaded = open_weights(args.weights, args.model).build()
    model, names, model_name = loaded.model, loaded.names, loaded.model_name
    # --size, else the size the weights store (a checkpoint's training size), else the model's.
    try:
        size = to_size(args.size or loaded.info.input_size or get_spec(model_name).input_size)
    except ValueError as exc:
        raise ExportError(f"invalid --size: {exc}") from None
    print(f"model {model_name}, input {size[0]}x{size[1]}, weights {loaded.info.path}", flush=True)
    options = ExportOptions(
        size=size, batch=args.batch_size, dynamic=args.dynamic, decode=args.decode, nms=args.nms,
        opset=args.opset, conf=args.conf, nms_iou=args.nms_iou, max_dets=args.max_dets, topk=args.topk,
        simplify=not args.no_simplify, names=tuple(names) if names is not None else None, model_name=model_name,
        half=args.half,
    )
    if args.int8:
        result = _export_int8(args, fmt, model, options, loaded.info.path)
        print(result.summary())
        advice = result.advice()
        if advice:
            print(advice)
        return 0
    result = export_model(model, fmt, args.out, options, check=_accuracy_check(args, fmt, model, options))
    print(result.summary())
    return 0


def _accuracy_check(args: argparse.Namespace, fmt: str, model, options):
    """``--val-data [--max-ap-drop X]`` of an edge export: the AP gate its writer calls on the
    staged file (:func:`~yoloxkit.quantize.accuracy.accuracy_gate`), else None."""
    if args.val_data is None:
        return None
    from ..data import load_dataset
    from ..infer.classes import default_names
    from ..quantize.accuracy import accuracy_gate

    val_data = load_dataset(args.val_data, split=args.val_split, default_prefix="val")
    names = list(options.names) if options.names else default_names(int(model.head.num_classes))
    return accuracy_gate(model, names, options.size, val_data, find_format(fmt).backend, args.max_ap_drop,
                         report=lambda line: print(line, flush=True))


def _export_int8(args: argparse.Namespace, fmt: str, model, options, weights_path):
    import dataclasses

    from ..data import load_dataset
    from ..errors import ExportError
    from ..quantize import OnnxInt8Recipe, recorded_training_images
    from ..quantize.export_int8 import Int8Settings, check_int8, export_int8

    val_data = None
    if args.val_data is not None:
        val_data = load_dataset(args.val_data, split=args.val_split, default_prefix="val")
    recipe = OnnxInt8Recipe()
    if args.calib_method:
        recipe = dataclasses.replace(recipe, method=args.calib_method)
    settings = Int8Settings(calib=args.calib or "", calib_count=args.calib_count, val_data=val_data,
                            max_ap_drop=args.max_ap_drop, onnx_recipe=recipe)
    check_int8(fmt, options, settings)  # before the calibration images are looked for
    if args.calib is None:
        calib = recorded_training_images(weights_path)
        if calib is None:
            raise ExportError("--int8 needs calibration images: give --calib DIR (a folder of images like those the"
                              f" model will see); {weights_path} records no training images that still exist")
        print(f"calibration images: the {len(calib)} training images {weights_path} records", flush=True)
        settings = dataclasses.replace(settings, calib=calib)
    return export_int8(model, fmt, args.out, options, settings, report=lambda line: print(line, flush=True))
