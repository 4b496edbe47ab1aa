"""Sliced inference against whole-image inference, and the ways of merging tiles, by AP and time.

Data: a generated small-object set (``yoloxkit.synth.make_small_object_set`` from
../shared/data/coco-mini val2017: 16 images at 1920x1080 and 8 at 3840x2160, seed 0, written to a
temporary folder unless ``--data`` names one) and ../shared/data/coco-mini val2017 itself (normal
images, for the no-regression check). The bundled yolox-nano at 416, conf 0.01 and per-tile NMS
0.65 (the evaluation settings).

Rows: the whole image; the tiles alone; the tiles with the whole image (``--slice-full``), each
with the merges compared (``nms``/``nmm`` x ``iou``/``ios`` at 0.5; the default is ``nms iou``);
and, when the ``sahi`` package is importable, SAHI's own ``get_sliced_prediction`` (greedy NMM,
IoS 0.5, with the whole image) driving the same detector through a thin ``DetectionModel``
adapter. Columns: COCO AP, AP_small, AP_large, AR@100, recall at IoU 0.5 over all objects and
over the small ones (area < 32^2) at the evaluation conf, and the mean milliseconds per image.
A last table times the tiles batched 8 per network call against one at a time.

    .venv/bin/python benchmarks/bench_sliced.py                 # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/bench_sliced.py --quick         # 4 + 2 images, one slice size
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import yoloxkit
from yoloxkit import Detector
from yoloxkit.data import load_dataset
from yoloxkit.evaluate import evaluate
from yoloxkit.evaluate.matching import match_predictions
from yoloxkit.evaluate.predictions import ImagePredictions
from yoloxkit.infer.detections import Detections
from yoloxkit.infer.slicing import Slicing
from yoloxkit.synth import make_small_object_set

REPO = Path(__file__).resolve().parents[1]
COCO_MINI = REPO.parent / "shared" / "data" / "coco-mini"
CONF, NMS = 0.01, 0.65
MERGES = (("nms", "iou"), ("nms", "ios"), ("nmm", "ios"), ("nmm", "iou"))


class Timed:
    """A predict function for :func:`evaluate` that records the seconds per image."""

    def __init__(self, run) -> None:
        self.run, self.seconds, self.images = run, 0.0, 0

    def __call__(self, paths):
        started = time.perf_counter()
        results = [self.run(str(path)) for path in paths]
        self.seconds += time.perf_counter() - started
        self.images += len(paths)
        return results


def recall_at_50(data, predictions) -> tuple[float, float]:
    """Recall at IoU 0.5 (score >= CONF) over all objects and over the small ones."""
    found = total = found_small = total_small = 0
    for record, pred in zip(data.records, predictions):
        match = match_predictions(record, pred, conf=CONF, iou_threshold=0.5)
        scored = ~match.gt_ignored
        area = (record.boxes[:, 2] - record.boxes[:, 0]) * (record.boxes[:, 3] - record.boxes[:, 1])
        small = scored & (area < 32 ** 2)
        found += int((match.gt_found & scored).sum())
        total += int(scored.sum())
        found_small += int((match.gt_found & small).sum())
        total_small += int(small.sum())
    return 100.0 * found / max(total, 1), 100.0 * found_small / max(total_small, 1)


def measure(label: str, run, data, names) -> dict:
    timed = Timed(run)
    collected: list[ImagePredictions] = []

    def predict(paths):
        results = timed(paths)
        collected.extend(ImagePredictions(r.boxes, r.scores, r.class_ids) for r in results)
        return results

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate(predict, data, names=names, progress=False, batch_size=1).metrics
    r50, r50_small = recall_at_50(data, collected)
    row = {"label": label, "AP": metrics["AP"], "APs": metrics["APs"], "APl": metrics["APl"],
           "AR100": metrics["AR100"], "R50": r50, "R50s": r50_small, "ms": 1000.0 * timed.seconds / timed.images}
    print(f"| {label} | {row['AP']:.2f} | {row['APs']:.2f} | {row['APl']:.2f} | {row['AR100']:.2f} | "
          f"{row['R50']:.1f} | {row['R50s']:.1f} | {row['ms']:.0f} |", flush=True)
    return row


def sahi_runner(detector: Detector, spec: Slicing):
    """SAHI's sliced prediction on our detector, or None when ``sahi`` is not installed."""
    try:
        from sahi.models.base import DetectionModel
        from sahi.predict import get_sliced_prediction
        from sahi.prediction import ObjectPrediction
    except ImportError:
        return None

    class YoloxkitModel(DetectionModel):
        def load_model(self):  # the detector is given ready
            raise NotImplementedError

        def set_model(self, model, **kwargs):
            self.model = model
            self.category_mapping = {str(i): name for i, name in enumerate(model.names)}

        def perform_inference(self, image):
            self._original_predictions = [self.model.predict_arrays([image])[0]]

        def perform_batch_inference(self, images):  # one network call for the batch of tiles
            self._original_predictions = self.model.predict_arrays(list(images))

        def _create_object_prediction_list_from_original_predictions(self, shift_amount_list=[[0, 0]],
                                                                     full_shape_list=None):
            shifts = shift_amount_list if isinstance(shift_amount_list[0], list) else [shift_amount_list]
            if full_shape_list is not None and not isinstance(full_shape_list[0], (list, tuple)):
                full_shape_list = [full_shape_list]
            per_image = []
            for index, found in enumerate(self._original_predictions):
                shape = None if full_shape_list is None else full_shape_list[index]
                per_image.append([
                    ObjectPrediction(bbox=[float(v) for v in box], category_id=int(c), score=float(s),
                                     category_name=self.model.names[int(c)], shift_amount=shifts[index],
                                     full_shape=shape)
                    for box, s, c in zip(found.boxes, found.scores, found.class_ids)
                ])
            self._object_prediction_list_per_image = per_image

    import logging

    logging.getLogger("sahi").setLevel(logging.ERROR)
    model = YoloxkitModel(model=detector, confidence_threshold=CONF, load_at_init=True)

    def run(path: str) -> Detections:
        import cv2

        image = cv2.imread(path)
        result = get_sliced_prediction(
            image, model, slice_height=spec.height, slice_width=spec.width, overlap_height_ratio=spec.overlap,
            overlap_width_ratio=spec.overlap, perform_standard_pred=True, postprocess_type="GREEDYNMM",
            postprocess_match_metric="IOS", postprocess_match_threshold=0.5, verbose=0, batch_size=8,
            auto_slice_resolution=False, force_postprocess_type=True,
        )
        preds = result.object_prediction_list
        boxes = np.array([p.bbox.to_xyxy() for p in preds], np.float32).reshape(-1, 4)
        return Detections(boxes, np.array([p.score.value for p in preds], np.float32),
                          np.array([p.category.id for p in preds], np.int64), detector.names, path,
                          image.shape[1], image.shape[0], None)

    return run


def table_header() -> None:
    print("| run | AP | AP_small | AP_large | AR@100 | recall@0.5 | recall@0.5 small | ms/image |")
    print("|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a small-object set made before (default: generate one)")
    parser.add_argument("--slices", default="416,256", help="slice sizes to compare (default 416,256)")
    parser.add_argument("--quick", action="store_true", help="a small set and one slice size")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"yoloxkit {yoloxkit.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()},"
          f" {torch.get_num_threads()} threads")
    detector = Detector(conf=CONF, nms=NMS, batch_size=8)
    names = detector.names
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "small-objects"
            count = (4, 2) if args.quick else (16, 8)
            made = make_small_object_set(COCO_MINI, "val2017", root, count=count, seed=0, progress=False)
            print(f"generated {made}")
        data = load_dataset(root)
        slices = [int(s) for s in args.slices.split(",")][: 1 if args.quick else None]
        print(f"\n### small-object set ({len(data.records)} images)\n")
        table_header()
        measure("whole image", lambda p: detector.predict(p, slicing=False)[0], data, names)
        for side in slices:
            for full in (False, True):
                for merge, match in MERGES:
                    spec = Slicing(side, side, 0.2, full=full, merge=merge, match=match)
                    label = f"slice {side}{' + full' if full else ''}, {merge} {match}"
                    measure(label, lambda p, s=spec: detector.predict(p, slicing=s)[0], data, names)
            sahi = sahi_runner(detector, Slicing(side, side, 0.2, full=True))
            if sahi is not None:
                measure(f"slice {side} + full, SAHI get_sliced_prediction (NMM ios)", sahi, data, names)
        time_batching(data)
    coco = load_dataset(COCO_MINI, split="val2017")
    if args.quick:
        coco = dataclasses.replace(coco, records=coco.records[:20])
    print(f"\n### coco-mini val2017 ({len(coco.records)} images)\n")
    table_header()
    measure("whole image", lambda p: detector.predict(p, slicing=False)[0], coco, names)
    for full in (False, True):
        spec = Slicing(300, 300, 0.2, full=full)
        measure(f"slice 300{' + full' if full else ''}, nms iou", lambda p, s=spec: detector.predict(p, slicing=s)[0],
                coco, names)


def time_batching(data) -> None:
    import cv2

    path = next(r.path for r in data.records if (r.width, r.height) == (1920, 1080))
    picture = cv2.imread(str(path))
    print("\n### tiles per network call (a 1920x1080 image of the set, slice 416 + full: 25 crops)\n")
    print("| tiles per call | ms/image |")
    print("|---|---|")
    for batch in (1, 8):
        sliced = Detector(conf=CONF, nms=NMS, batch_size=batch, slice_size=416, slice_full=True)
        sliced.predict_arrays([picture])
        started = time.perf_counter()
        for _ in range(3):
            sliced.predict_arrays([picture])
        print(f"| {batch} | {1000 * (time.perf_counter() - started) / 3:.0f} |", flush=True)


if __name__ == "__main__":
    main()
