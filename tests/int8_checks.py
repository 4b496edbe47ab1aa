"""Checks of INT8 files that run in a child process (``run_isolated``): one long-lived process
that compiled OpenVINO INT8 models among hundreds of other tests crashed later with a corrupted
heap (OpenVINO 2026.4, docs/int8.md), so each check gets a fresh interpreter, as a user's
``predict`` or ``serve`` does. Each check returns a JSON-able dict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def run_isolated(check: str, *args: str) -> dict:
    """Run ``check(*args)`` of this module in a fresh interpreter and return its result."""
    code = ("import json, sys; from tests import int8_checks as c; "
            "print('RESULT ' + json.dumps(getattr(c, sys.argv[1])(*sys.argv[2:])))")
    done = subprocess.run([sys.executable, "-c", code, check, *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _matched_fraction(reference, other, iou: float = 0.5) -> float:
    """Share of the reference's detections that ``other`` finds with the same class at ``iou``."""
    if len(reference) == 0:
        return 1.0
    found = 0
    for box, cls in zip(reference.boxes, reference.class_ids):
        same = other.boxes[other.class_ids == cls]
        if len(same):
            lt, rb = np.maximum(box[:2], same[:, :2]), np.minimum(box[2:], same[:, 2:])
            inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
            union = np.prod(box[2:] - box[:2]) + np.prod(same[:, 2:] - same[:, :2], axis=1) - inter
            found += bool((inter / union >= iou).any())
    return found / len(reference)


def detections(float_path: str, int8_path: str, images_dir: str) -> dict:
    """Float and INT8 Detectors on 6 images: backends, precisions and how many float boxes INT8 finds."""
    import yoloxkit

    float_det = yoloxkit.Detector(weights=float_path, conf=0.3)
    int8_det = yoloxkit.Detector(weights=int8_path, conf=0.3)
    images = sorted(Path(images_dir).glob("*.jpg"))[:6]
    reference, quantised = float_det(images), int8_det(images)
    return {"backend": int8_det.backend, "precision": int8_det.precision, "float_precision": float_det.precision,
            "describe": int8_det.describe(), "float_boxes": sum(len(r) for r in reference),
            "fractions": [_matched_fraction(f, q) for f, q in zip(reference, quantised)]}


def cli(*argv: str) -> dict:
    """``yoloxkit ARGV`` (in this process): its exit code and output."""
    import contextlib
    import io

    from yoloxkit.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return {"code": code, "out": out.getvalue()}


def serve(path: str, image: str) -> dict:
    """``/v1/model`` and ``/v1/detect`` of a service on the file."""
    from fastapi.testclient import TestClient

    import yoloxkit
    from yoloxkit.serve.app import create_app

    app = create_app(yoloxkit.Detector(weights=path), conf=0.25, nms=0.45, max_wait_ms=1.0)
    with TestClient(app) as client:
        info = client.get("/v1/model").json()
        response = client.post("/v1/detect", files={"file": ("dog.jpg", Path(image).read_bytes(), "image/jpeg")})
    return {"precision": info["precision"], "status": response.status_code,
            "names": [d["name"] for d in response.json().get("detections", [])]}
