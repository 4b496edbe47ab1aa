"""yoloxkit: the YOLOX object detector as an installable toolkit."""

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
from .models import YOLOX, model_names
from .trainable import build_model

__version__ = "0.1.0"

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


def __getattr__(name: str):
    # Lazy imports keep `import yoloxkit` light.
    if name in ("Detector", "Detections"):
        from . import infer

        return getattr(infer, name)
    if name == "load_weights":
        from .weights import load_weights

        return load_weights
    raise AttributeError(f"module 'yoloxkit' has no attribute {name!r}")
