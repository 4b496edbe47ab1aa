"""YOLOX model family."""

from .anchors import YOLOV3_ANCHORS
from .coupled_head import CoupledHead
from .head import DecoupledHead, decode_outputs, make_grid
from .head_base import DetectionHead, anchor_based
from .roadmap import PAPER_TABLE2, ROADMAP_ROWS, PaperRow
from .yolox import YOLOX
from .zoo import MODEL_SPECS, ModelSpec, build_model, build_network, get_spec, model_names

__all__ = [
    "YOLOX",
    "DetectionHead",
    "anchor_based",
    "DecoupledHead",
    "CoupledHead",
    "YOLOV3_ANCHORS",
    "ModelSpec",
    "MODEL_SPECS",
    "PAPER_TABLE2",
    "PaperRow",
    "ROADMAP_ROWS",
    "build_network",
    "build_model",
    "get_spec",
    "model_names",
    "decode_outputs",
    "make_grid",
]
