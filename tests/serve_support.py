"""Helpers for the serving tests: a fast fake detector and encoded test images."""

from __future__ import annotations

import threading
import time
from typing import Sequence

import cv2
import numpy as np

from yoloxkit.infer.detections import Detections
from yoloxkit.infer.slicing import Slicing

FAKE_NAMES = ["person", "dog", "bicycle", "traffic light"]


class FakeDetector:
    """Stands in for ``yoloxkit.Detector``: three fixed boxes per image, optional delay, gate or failure.

    Detections scale with the image: dog 0.9, bicycle 0.5, person 0.1 (classes 1, 2, 0).
    Every call is recorded as ``(batch size, conf, nms)``, and its ``slicing`` keyword (None when
    not given) in ``slicings``; ``slicing`` is the default the server reads, boxes ignore it.
    """

    model_name = "fake-yolox"
    backend = "fake"
    size = (416, 416)

    def __init__(self, delay_s: float = 0.0, fail: bool = False, gate: threading.Event | None = None,
                 slicing: Slicing | None = None) -> None:
        self.names = list(FAKE_NAMES)
        self.num_classes = len(self.names)
        self.delay_s = delay_s
        self.fail = fail
        self.gate = gate  # when given, predict() waits for it to be set
        self.calls: list[tuple[int, float, float]] = []
        self.slicing = slicing
        self.slicings: list[Slicing | bool | None] = []
        self.lock = threading.Lock()

    def predict(self, images: Sequence[np.ndarray], conf: float | None = None, nms: float | None = None,
                classes: Sequence[int] | None = None, slicing: Slicing | bool | None = None) -> list[Detections]:
        conf = 0.25 if conf is None else conf
        nms = 0.45 if nms is None else nms
        with self.lock:
            self.calls.append((len(images), conf, nms))
            self.slicings.append(slicing)
        if self.gate is not None:
            self.gate.wait(30)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("fake inference failure")
        results = []
        for image in images:
            h, w = image.shape[:2]
            boxes = np.array([[0.1 * w, 0.2 * h, 0.5 * w, 0.9 * h], [0.3 * w, 0.1 * h, 0.9 * w, 0.7 * h],
                              [0.0, 0.0, 0.2 * w, 0.3 * h]], dtype=np.float32)
            scores = np.array([0.9, 0.5, 0.1], dtype=np.float32)
            class_ids = np.array([1, 2, 0], dtype=np.int64)
            keep = scores >= conf
            if classes is not None:
                keep &= np.isin(class_ids, list(classes))
            results.append(Detections(boxes[keep], scores[keep], class_ids[keep], self.names, None, w, h, image))
        return results


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def sample_image(width: int = 64, height: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)


def png_bomb_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels with almost no pixel data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
