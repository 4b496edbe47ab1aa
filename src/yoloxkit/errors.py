"""Exception classes of yoloxkit. Every message is one line naming the file or argument."""

from __future__ import annotations

__all__ = [
    "YoloxkitError",
    "UnknownModelError",
    "WeightsError",
    "WeightsMismatchError",
    "ImageReadError",
    "ImageTooLargeError",
    "UnsupportedImageError",
    "SettingError",
    "DatasetError",
    "DownloadError",
    "MissingDependencyError",
    "ExportError",
    "InferenceError",
    "TrackingError",
    "OutputError",
    "first_line",
    "last_line",
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


class ImageTooLargeError(ImageReadError):
    """An image whose header declares more pixels than the pixel limit (``YOLOXKIT_MAX_PIXELS``);
    refused before its pixels are decoded."""


class UnsupportedImageError(ImageReadError):
    """Data that is not an image in a format the decoder accepts, or whose pixel type it cannot
    decode (32-bit integer or float samples)."""


class SettingError(YoloxkitError, ValueError):
    """An environment setting with an invalid value (e.g. ``YOLOXKIT_MAX_PIXELS``)."""


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


class OutputError(YoloxkitError):
    """An output file or folder that cannot be written: its folder is a file, the disk is full or
    read-only, permission is denied. The message names the file (and the option that gave it)
    and the reason; what was written before is left intact."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type name if it has none): the reason a
    one-line error quotes from a library's exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def last_line(text: str, default: str = "") -> str:
    """The last non-blank line of ``text``, stripped (``default`` when there is none): what a
    native library or a child process printed last, usually its report of what failed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else default
