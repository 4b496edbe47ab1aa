"""The inference defaults, defined once: every signature, argparse default and help text of the
inference front ends (``Detector``, post-processing, ``predict``, ``track``, ``serve``) takes them
from here.

``DEFAULT_CONF``/``DEFAULT_NMS`` are for looking at detections (the official demo's 0.25 score
threshold and 0.45 NMS IoU); ``EVAL_CONF``/``EVAL_NMS`` are the official evaluation thresholds
(0.01 and 0.65), which keep the low-score boxes that COCO AP rewards.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_CONF", "DEFAULT_NMS", "EVAL_CONF", "EVAL_NMS", "DEFAULT_MAX_DETS", "DEFAULT_BATCH_SIZE",
    "DEFAULT_SLICE_OVERLAP",
]

#: score threshold (objectness x class probability) of a prediction run
DEFAULT_CONF = 0.25
#: class-aware NMS IoU threshold of a prediction run
DEFAULT_NMS = 0.45
#: score threshold of an evaluation run (the official one)
EVAL_CONF = 0.01
#: NMS IoU threshold of an evaluation run (the official one)
EVAL_NMS = 0.65
#: detections kept per image by NMS-free (top-k) post-processing: COCO's ``maxDets``
DEFAULT_MAX_DETS = 100
#: images per network call of a ``Detector``
DEFAULT_BATCH_SIZE = 16
#: fraction of a tile shared with its neighbour in sliced inference
DEFAULT_SLICE_OVERLAP = 0.2
