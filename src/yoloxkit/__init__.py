"""yoloxkit: the YOLOX object detector as an installable toolkit."""

from . import cli as _cli

# The `yoloxkit` command waits passively in OpenMP unless the user chose a policy. It has to be
# in the environment before torch loads its OpenMP runtime, i.e. before the imports below;
# `import yoloxkit` from a program leaves the environment alone.
if _cli.invoked_as_command():
    _cli.prefer_passive_openmp()

from . import errors
from ._version import __version__
from .errors import *  # noqa: F403 (every exception class, listed in errors.__all__)
from .infer import Detections, Detector, StreamSettings, watch_streams
from .models import YOLOX, model_names
from .tracking import Tracker
from .trainable import build_model
from .weights import load_weights

__all__ = [
    "__version__",
    "build_model",
    "model_names",
    "YOLOX",
    "Detector",
    "Detections",
    "Tracker",
    "watch_streams",
    "StreamSettings",
    "load_weights",
    *errors.__all__,
]
