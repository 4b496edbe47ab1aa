"""yoloxkit: the YOLOX object detector as an installable toolkit."""

from . import errors
from ._version import __version__
from .errors import *  # noqa: F403 (every exception class, listed in errors.__all__)
from .infer import Detections, Detector
from .models import YOLOX, model_names
from .trainable import build_model
from .weights import load_weights

__all__ = [
    "__version__",
    "build_model",
    "model_names",
    "YOLOX",
    "Detector",
    "Detections",
    "load_weights",
    *errors.__all__,
]
