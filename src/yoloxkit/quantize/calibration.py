"""Calibration images for post-training quantisation: a folder of the user's images, letterboxed
exactly as inference feeds the network."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data import load_dataset
from ..errors import DatasetError, ExportError, ImageReadError, WeightsError
from ..imaging import list_images, read_image
from ..weights import WeightsFile
from ..weights.calibration import letterboxed_chw

__all__ = ["DEFAULT_CALIB_COUNT", "calibration_files", "calibration_inputs", "recorded_training_images"]

#: images used when ``--calib-count`` is not given (enough for stable ranges; more costs time only)
DEFAULT_CALIB_COUNT = 64


def recorded_training_images(weights: str | os.PathLike | None) -> list[Path] | None:
    """The training images of the run that wrote the checkpoint ``weights`` (its ``train_data``:
    the dataset and training split), if they still exist; None for other files (official
    checkpoints, exports) or when they are gone."""
    if weights is None or not Path(weights).is_file():
        return None
    opened = WeightsFile.at(weights)
    if opened.format.runs_as_is:  # an export: no training run recorded
        return None
    try:
        recorded = opened.contents.checkpoint.get("train_data")
        if not isinstance(recorded, dict) or not recorded.get("data"):
            return None
        data = load_dataset(recorded["data"], split=recorded.get("split"), default_prefix="train")
    except (WeightsError, DatasetError, OSError, AttributeError):
        return None
    files = [record.path for record in data.records if Path(record.path).is_file()]
    return files or None


def calibration_files(folder: str | os.PathLike | list[Path], count: int = DEFAULT_CALIB_COUNT) -> list[Path]:
    """Up to ``count`` image files of ``folder`` (searched recursively), spread evenly over its
    sorted listing so that a folder ordered by scene is sampled across scenes.

    ``folder`` may also be a list of files (:func:`recorded_training_images`). Raises
    :class:`ExportError` naming the folder when it does not exist or holds no image file.
    """
    if count < 1:
        raise ExportError(f"invalid --calib-count {count}: it must be >= 1")
    if isinstance(folder, list):
        files = sorted(folder)
    else:
        folder = Path(folder)
        if not folder.is_dir():
            raise ExportError(f"calibration folder not found: {folder}")
        files = sorted(list_images(folder))
    if not files:
        raise ExportError(f"calibration folder {folder} holds no image files (.jpg, .png, ...)")
    if len(files) <= count:
        return files
    picks = np.linspace(0, len(files) - 1, count).round().astype(int)
    return [files[i] for i in picks]


def calibration_inputs(files: list[Path], size: tuple[int, int]) -> tuple[np.ndarray, list[Path]]:
    """The readable images of ``files`` letterboxed to ``size``: ``[N, 3, H, W]`` float32 BGR
    0-255, the network's input, and the files skipped as unreadable; none readable raises
    :class:`ExportError` naming the folder."""
    items, skipped = [], []
    for path in files:
        try:
            image = read_image(path)
        except ImageReadError:
            skipped.append(path)
            continue
        items.append(letterboxed_chw(image, size))
    if not items:
        folder = files[0].parent if files else "the calibration folder"
        raise ExportError(f"no readable calibration image in {folder} ({len(files)} files tried)")
    return np.stack(items), skipped
