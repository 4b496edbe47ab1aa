"""YOLOX model family."""

from .head import DecoupledHead, decode_outputs, make_grid
from .yolox import YOLOX
from .zoo import MODEL_SPECS, ModelSpec, build_model, build_network, get_spec, model_names

__all__ = [
    "YOLOX",
    "DecoupledHead",
    "ModelSpec",
    "MODEL_SPECS",
    "build_network",
    "build_model",
    "get_spec",
    "model_names",
    "decode_outputs",
    "make_grid",
]
