"""yoloxkit: the YOLOX object detector as an installable toolkit."""

from ._version import __version__
from .errors import (
    DatasetError,
    DownloadError,
    ImageReadError,
    MissingDependencyError,
    UnknownModelError,
    WeightsError,
    WeightsMismatchError,
    YoloxkitError,
)
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
    "YoloxkitError",
    "UnknownModelError",
    "WeightsError",
    "WeightsMismatchError",
    "ImageReadError",
    "DatasetError",
    "DownloadError",
    "MissingDependencyError",
]

