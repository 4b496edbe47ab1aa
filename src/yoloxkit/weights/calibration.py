"""BatchNorm calibration inputs and statistics for un-folding an ONNX export.

Calibration images are BGR arrays, image files or folders; without any, deterministic
variations of the bundled demo picture are used (with a warning). Each image is letterboxed as
the model sees it. :class:`ChannelStats` merges per-channel means and variances batch by batch
in float64.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Sequence, Union

import cv2
import numpy as np
import torch

from ..imaging import image_files, letterbox, read_image
from ..imaging.letterbox import pad_to
from ..packaged import bundled_demo_image

__all__ = ["CalibrationSource", "calibration_images", "calibration_items", "calibration_batch", "letterboxed_chw", "ChannelStats"]

logger = logging.getLogger("yoloxkit")

def letterboxed_chw(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The inference letterbox as ``[3, h, w]`` float32 (BGR, 0-255): what the model sees."""
    canvas, _ = letterbox(image, size)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32)


def _demo_variations(image: np.ndarray) -> list[np.ndarray]:
    """Deterministic variations of one picture: flips, crops and scales (padding included)."""
    height, width = image.shape[:2]
    flipped = image[:, ::-1]
    variations = [image, flipped]
    for top, left, frac in ((0.0, 0.0, 0.6), (0.4, 0.4, 0.6), (0.1, 0.25, 0.75), (0.2, 0.0, 0.5)):
        y0, x0 = int(top * height), int(left * width)
        crop = image[y0 : y0 + int(frac * height), x0 : x0 + int(frac * width)]
        variations += [crop, crop[:, ::-1]]
    for scale in (0.5, 0.75):  # smaller content, more padding
        small = cv2.resize(image, (max(1, int(width * scale)), max(1, int(height * scale))), interpolation=cv2.INTER_AREA)
        variations.append(pad_to(small, (height, width)))
    return [np.ascontiguousarray(v) for v in variations]


CalibrationSource = Union[Sequence[np.ndarray], str, os.PathLike, Iterable[Union[str, os.PathLike]], None]


def _demo_calibration_images() -> list[np.ndarray]:
    images = _demo_variations(read_image(bundled_demo_image()))
    logger.warning(
        "calibrating BatchNorm statistics on the bundled demo picture (%d variations); pass calibration "
        "images (--calib-images) from your data for better statistics when fine-tuning",
        len(images),
    )
    return images


def calibration_items(calib_images: CalibrationSource) -> list[np.ndarray | Path]:
    """Arrays as given, or the files to read one batch at a time (default: the demo picture)."""
    if calib_images is None:
        return list(_demo_calibration_images())
    if isinstance(calib_images, (str, os.PathLike)):
        return list(image_files(calib_images))
    given = list(calib_images)
    if given and all(isinstance(item, np.ndarray) for item in given):
        return given
    return list(image_files(given))


def calibration_batch(items: Sequence[np.ndarray | Path], size: tuple[int, int]) -> np.ndarray:
    """Read (if needed) and letterbox calibration items into one ``[B, 3, h, w]`` float32 batch."""
    return np.stack([letterboxed_chw(i if isinstance(i, np.ndarray) else read_image(i), size) for i in items])


def calibration_images(sources: str | os.PathLike | Iterable[str | os.PathLike] | None = None) -> list[np.ndarray]:
    """Load calibration pictures (BGR ``uint8``) from image files and/or folders.

    With no sources, use deterministic variations of the bundled demo picture (and say so).
    """
    if sources is None:
        return _demo_calibration_images()
    return [read_image(p) for p in image_files(sources)]


class ChannelStats:
    """Per-channel mean and variance over (batch, height, width), merged batch by batch in float64."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, output: torch.Tensor) -> None:
        x = output.detach()
        dims = (0, 2, 3)
        n = x.numel() // x.shape[1]
        mean = x.sum(dim=dims, dtype=torch.float64) / n
        centered = x - mean.to(x.dtype)[None, :, None, None]  # centre first: no cancellation
        shift = centered.sum(dim=dims, dtype=torch.float64) / n  # float rounding of the centring
        m2 = (centered * centered).sum(dim=dims, dtype=torch.float64) - shift * shift * n
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def var(self) -> torch.Tensor:
        assert self.m2 is not None
        return self.m2 / self.count
