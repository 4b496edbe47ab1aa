"""Build the bundled yolox-nano COCO checkpoint from the official ONNX export.

    python scripts/build_bundled_weights.py [--onnx ../shared/models/yolox_nano_coco.onnx]
        [--calib-images ../shared/data/coco-mini/train2017] [--out src/yoloxkit/assets/yolox_nano_coco.pth]

The ONNX file's folded convs are imported into yolox-nano and every BatchNorm is calibrated on the
calibration images, letterboxed at 416 as the model sees them (all 80 coco-mini train2017 images by
default). The checkpoint stores the COCO class names and the model name, and is written atomically.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from yoloxkit.coco_names import COCO_NAMES
from yoloxkit.models import build_network
from yoloxkit.imaging import image_files
from yoloxkit.weights import guess_model_name, import_onnx_into, read_onnx_weights
from yoloxkit.weights import BUNDLED_MODEL, bundled_weights_path, load_weights, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, default=SHARED / "models" / "yolox_nano_coco.onnx")
    parser.add_argument("--calib-images", type=Path, default=SHARED / "data" / "coco-mini" / "train2017")
    parser.add_argument("--out", type=Path, default=bundled_weights_path())
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    weights = read_onnx_weights(args.onnx)
    name = guess_model_name(weights)
    if name != BUNDLED_MODEL or weights.num_classes != len(COCO_NAMES):
        print(f"error: {args.onnx} looks like {name} with {weights.num_classes} classes, not {BUNDLED_MODEL} COCO")
        return 2
    images = image_files(args.calib_images)
    model = build_network(name, num_classes=weights.num_classes)
    report = import_onnx_into(model, weights, images, size=weights.input_hw or (416, 416), progress=True)
    print(f"imported {report.num_convs} convs, calibrated on {report.num_calibration_images} images; "
          f"max |diff| vs onnxruntime on the first image: {report.max_abs_diff:.3g}")
    save_checkpoint(args.out, model, list(COCO_NAMES), name, source=f"official YOLOX-Nano COCO ONNX export ({args.onnx.name})")

    # Read it back the way users will, and check it still reproduces the ONNX file.
    check = build_network(name).eval()
    names = load_weights(check, args.out)
    assert names == list(COCO_NAMES)
    reference = torch.load(args.out, map_location="cpu", weights_only=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(reference['model'])} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
