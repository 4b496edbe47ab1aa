"""Exception classes of yoloxkit. Every message is one line naming the file or argument."""

from __future__ import annotations

__all__ = [
    "YoloxkitError",
    "UnknownModelError",
    "WeightsError",
    "WeightsMismatchError",
    "ImageReadError",
    "DatasetError",
    "DownloadError",
    "MissingDependencyError",
    "ExportError",
    "InferenceError",
    "TrackingError",
]


class YoloxkitError(Exception):
    """Base class; the CLI prints ``error: <message>`` and exits with status 2."""


class UnknownModelError(YoloxkitError, ValueError):
    """A model name that is not in the zoo."""


class WeightsError(YoloxkitError):
    """A weights file that cannot be read."""


class WeightsMismatchError(WeightsError):
    """A weights file that belongs to another model size or class count."""


class ImageReadError(YoloxkitError):
    """An image file that is missing, not an image, or truncated."""


class DatasetError(YoloxkitError):
    """A dataset that is missing, malformed or inconsistent."""


class DownloadError(YoloxkitError):
    """A download of official weights that failed (e.g. offline)."""


class MissingDependencyError(YoloxkitError, ImportError):
    """An optional dependency that is not installed."""


class ExportError(YoloxkitError):
    """An export that cannot be made (bad format or opset) or that its runtime does not reproduce."""


class InferenceError(YoloxkitError, ValueError):
    """Bad inference settings: an unknown backend, an unavailable device, an invalid threshold or
    size, or a network file that is not a YOLOX export."""


class TrackingError(YoloxkitError, ValueError):
    """Tracking input that cannot be used: a malformed or mismatched MOTChallenge file or folder,
    an unknown tracker, or bad tracker settings."""
