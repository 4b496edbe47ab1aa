"""``yoloxkit eval``: COCO AP or Pascal VOC mAP of a model on a dataset split."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..infer.defaults import EVAL_CONF, EVAL_NMS
from ..packaged import BUNDLED_MODEL
from .argtypes import WEIGHTS_HELP, add_slice_options, positive_int, slice_options, unit_float

DESCRIPTION = """\
Evaluate a model on one split of a COCO, Pascal VOC or YOLO-txt dataset (format detected).

Metrics (--metric auto): COCO data -> the 12 COCO numbers (faster-coco-eval, identical to
pycocotools) and a per-class AP table; VOC data -> mAP50 (area under the PR curve), mAP50_voc07
(11-point) and mAP50_95, difficult boxes ignored, plus a per-class table; YOLO-txt data is scored
the COCO way (boxes from the label files, areas = box areas). --metric coco|voc forces either.
Model classes are matched to dataset classes by name; dataset classes the model does not know are
left out (warning) and reported as null.

End-to-end models (-e2e, and exports of them) are NMS-free: each image keeps its top --max-dets
(100, COCO's maxDets) detections scoring at least --conf, without NMS; --nms is then ignored
(a note says so). --no-nms-free runs class-aware NMS on their scores instead; --nms-free runs a
base model without NMS. The report adds duplicates@0.3: the percentage of gt boxes matched by
more than one detection of their class (score >= 0.3, IoU >= 0.5; crowd/difficult boxes excluded).

--slice H[xW] evaluates sliced inference (small objects in large images): every image must be at
least that large, which is checked before any image runs.

--json-out and --plots are checked before any image runs too. Plots that still cannot be written
(a full disk) do not cost the metrics: they are printed and --json-out is written, then the run
exits with status 2 naming the file that could not be written.
"""



def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="COCO AP / VOC mAP of a model on a dataset split", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="dataset directory (COCO, VOC or YOLO-txt) or a YOLO data YAML")
    p.add_argument("--split", help="split name or unique prefix (default: the unique split starting with 'val')")
    p.add_argument("--names", help="class names for VOC/YOLO data without a names file (comma list or .txt/.json/.yaml)")
    p.add_argument("--model", help=f"model name (default: the one --weights names or stores, else {BUNDLED_MODEL} "
                   "with its bundled COCO weights)")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--size", type=positive_int, help="input size (default: the size the weights store, i.e. the"
                   " training or export size, else the model's, 416 or 640)")
    p.add_argument("--conf", type=unit_float, default=EVAL_CONF, help=f"score threshold (default {EVAL_CONF:g}, as official)")
    p.add_argument("--nms", type=unit_float, help=f"NMS IoU threshold (default {EVAL_NMS}, as official; ignored"
                   " by NMS-free -e2e models)")
    p.add_argument("--nms-free", action=argparse.BooleanOptionalAction, default=None,
                   help="top-k without NMS (default: for end-to-end -e2e models); --no-nms-free: NMS on any model")
    p.add_argument("--max-dets", type=positive_int, default=100,
                   help="NMS-free: detections kept per image (default 100, COCO's maxDets)")
    # Backend names are checked by the Detector against the backend registry (one source of names).
    p.add_argument("--backend", help="inference backend: torch, onnxruntime or openvino (default: from weights)")
    p.add_argument("--device", help="cpu or cuda (default: the detector's default)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per inference batch (default 8)")
    p.add_argument("--metric", choices=("auto", "coco", "voc"), default="auto",
                   help="auto: COCO for COCO and YOLO-txt data, VOC for VOC data")
    p.add_argument("--engine", choices=("faster-coco-eval", "pycocotools"), default="faster-coco-eval",
                   help="COCO metric engine (default faster-coco-eval; identical numbers, several times faster)")
    p.add_argument("--json-out", help="write the metrics (percent) and per-class AP to this JSON file")
    p.add_argument("--plots", metavar="DIR", help="write PR curves, a confusion matrix and a worst-images gallery")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_slice_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..evaluate import evaluate

    data = load_dataset(args.data, split=args.split, default_prefix="val", names=args.names)
    _check_outputs(args)
    from ..infer import Detector

    options = {"weights": args.weights, "size": args.size, "conf": args.conf, "nms": args.nms,
               "device": args.device, "backend": args.backend, "nms_free": args.nms_free}
    detector = Detector(args.model, max_dets=args.max_dets, **{k: v for k, v in options.items() if v is not None},
                        **slice_options(args))
    if detector.slicing is not None:  # an image smaller than the slice fails now, not half-way
        for record in data.records:
            detector.slicing.check_fits(record.height, record.width, image=str(record.path))
    if args.nms is None:  # the official evaluation threshold; given to the Detector only when asked (its note)
        detector.nms = EVAL_NMS
    print(detector.describe(), flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(
            detector, data, batch_size=args.batch_size, metric=args.metric, conf=args.conf, nms=detector.nms,
            engine=args.engine, plots_dir=args.plots, progress=not args.no_progress,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(f"{data.format} data {data.root} split {data.split}: {result.num_images} images, "
          f"{result.num_predictions} predictions")
    print(result.format())
    if args.json_out:
        result.save_json(args.json_out, what="--json-out")
        print(f"metrics written to {args.json_out}")
    for path in result.plots:
        print(f"plot written to {path}")
    if result.plots_error is not None:  # the metrics above are kept; the plots are the run's error
        sys.stdout.flush()
        kept = f"; the metrics were written to {args.json_out}" if args.json_out else ""
        print(f"error: {result.plots_error}{kept}", file=sys.stderr)
        return 2
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """--json-out and --plots can be written: checked before any image runs."""
    from ..io import check_writable, check_writable_dir

    if args.json_out:
        check_writable(args.json_out, "--json-out")
    if args.plots:
        check_writable_dir(args.plots, "--plots")
