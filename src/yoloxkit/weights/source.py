"""Where a model's weights come from: a file given by path, the bundled yolox-nano COCO
checkpoint, or a cached download of the official release checkpoint (:mod:`.hub`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import UnknownModelError, WeightsError, WeightsMismatchError
from ..models import get_spec, model_names
from ..packaged import BUNDLED_MODEL, bundled_weights_path
from . import hub
from .formats import known_suffixes

__all__ = ["WeightsKind", "WeightsSource", "resolve_weights_source", "zoo_name"]

WeightsKind = Literal["file", "bundled", "official"]


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights come from: a file given by path, the bundled checkpoint, or the
    official release download (``path`` is then its place in the cache)."""

    path: Path
    kind: WeightsKind
    model_name: str | None  # the zoo model a bundled or official file belongs to; None for a file
    url: str | None = None  # the release URL of an official file

    def describe(self) -> str:
        """A short phrase for a log line, e.g. ``the bundled yolox-nano COCO weights (PATH)``."""
        detector = get_spec(self.model_name).detector if self.model_name else None
        if self.kind == "bundled":
            return f"the bundled {detector} COCO weights ({self.path})"
        if self.kind == "official":
            return f"the official {detector} COCO weights ({self.path}, from {self.url})"
        return str(self.path)

    def label(self) -> str:
        """The weights in a word or two, for a command's first line: ``bundled``,
        ``official PATH`` (the cached download) or the file's path."""
        if self.kind == "bundled":
            return "bundled"
        return f"official {self.path}" if self.kind == "official" else str(self.path)


def zoo_name(weights: str | os.PathLike) -> str | None:
    """The zoo model ``weights`` names (``yolox-s``, ``yolox_s``, ...), or None if it names none.
    Only full names starting with ``yolox`` count: a missing file called ``s`` or ``x`` is an
    error, never a download."""
    text = os.fspath(weights)
    if not text.strip().lower().startswith("yolox") or "/" in text or os.sep in text:
        return None
    try:
        return get_spec(text).name
    except UnknownModelError:
        return None


#: the files a folder given as weights is most likely meant to hold: a training run's checkpoints
_LIKELY_FILES = ("best.pth", "last.pth")


def _folder_error(folder: Path, weights: str | os.PathLike) -> WeightsError:
    """The error for a folder given as weights, suggesting the weights file inside it (a run's
    ``best.pth``/``last.pth``, else its one weights file, e.g. the ``.xml`` of an OpenVINO export)."""
    candidates = [folder / name for name in _LIKELY_FILES if (folder / name).is_file()]
    if not candidates:
        suffixes = known_suffixes()
        candidates = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    hint = f" (did you mean {candidates[0]}?)" if candidates else ""
    return WeightsError(f"--weights {os.fspath(weights)} is a folder, not a weights file{hint}")


def _named_model(model_name: str | None, weights: str | os.PathLike) -> str:
    """The zoo model a ``weights`` argument that is no file names, checked against ``model_name``."""
    named = zoo_name(weights)
    if named is None:
        raise WeightsError(f"weights file not found: {weights} (nor is it a zoo name: {', '.join(model_names())})")
    if model_name is not None and get_spec(model_name).detector != get_spec(named).detector:
        raise WeightsMismatchError(
            f"model {model_name} and weights {os.fspath(weights)} name different zoo models; drop one or make them agree"
        )
    return model_name or named


def resolve_weights_source(
    model_name: str | None,
    weights: str | os.PathLike | None = None,
    *,
    scratch_hint: bool = False,
) -> WeightsSource:
    """Where the weights of ``model_name`` come from.

    ``weights`` is an existing file, or a zoo name (``yolox-s``; a file of that name wins), or
    None for ``model_name``'s own weights. A zoo model's weights are the bundled COCO checkpoint
    for yolox-nano and the official release checkpoint otherwise, downloaded once into the cache;
    a failed download raises :class:`~yoloxkit.errors.DownloadError` naming the URL and
    ``--weights PATH`` (and ``--weights none`` with ``scratch_hint``, for training). A model name
    and a weights name that differ raise :class:`WeightsMismatchError`.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_file():
            return WeightsSource(path, "file", None)
        if path.is_dir() and os.fspath(weights).strip():  # "" is Path("."): no weights given, not a folder
            raise _folder_error(path, weights)
        model_name = _named_model(model_name, weights)
    if model_name is None:
        raise WeightsError("give a model name or a weights file")
    # An end-to-end model's own weights are its base detector's (the PSS branch starts fresh).
    spec = get_spec(model_name)
    name = spec.detector
    if name == BUNDLED_MODEL:
        bundled = bundled_weights_path()
        if not bundled.is_file():
            raise WeightsError(f"bundled weights missing from the package ({bundled}); reinstall yoloxkit")
        return WeightsSource(bundled, "bundled", spec.name)
    url = hub.official_weights_url(name)
    path = hub.download_official(name, url=url, scratch_hint=scratch_hint)
    return WeightsSource(path, "official", spec.name, url)
