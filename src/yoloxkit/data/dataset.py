"""The training dataset: one augmented sample per index, reproducible from (seed, epoch, index).

Each sample is ``(image, targets)``: a ``uint8`` BGR ``[H, W, 3]`` image of the input size and
``float32`` ``[max_labels, 5]`` targets ``(class, cx, cy, w, h)`` in input pixels, padded with zero
rows (:func:`yoloxkit.data.loader.collate` turns a list of them into the float32 CHW batch).

Seeding: sample ``index`` of epoch ``e`` draws all its randomness from
``numpy.random.default_rng([seed, e, index])``, so the same seed and epoch give the same samples
whatever the number of workers, the order of the sampler or an interruption. Call
:meth:`TrainingDataset.set_epoch` before iterating an epoch (DataLoader workers must not be
persistent, so that they see the new epoch), and :meth:`close_mosaic` to drop Mosaic/MixUp for
the last epochs.

Samples without boxes follow the official TrainTransform: a sample with no boxes at all is only
padded to the input size (no HSV, no flip, no random draws), and a sample whose boxes are all
removed by the box filter falls back to the image it had before HSV and flip (the Mosaic/MixUp
output or the plain image) with all its unfiltered boxes, zero-size boxes clipped away at a
Mosaic border included, as the official code keeps them. ``AugmentConfig(keep_background=True)``
keeps the augmented image as a background sample instead and gives every sample HSV and flip.
Difference from the official pipeline, on purpose: randomness comes from per-sample generators
instead of the global ``random``/``numpy`` state (same distributions, other streams).

Bad data does not stop training mid-epoch: boxes reaching outside their image are clipped and
boxes of zero size are dropped (counted in :attr:`TrainingDataset.warnings`, one line each, which
the caller shows: the dataset does not log them itself); an image that
cannot be decoded is replaced by the next readable one, with a warning naming it. Problems
that make training meaningless (no images, class ids outside the names) raise
:class:`~yoloxkit.errors.DatasetError` when the dataset is built, before the first iteration.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DatasetError, ImageReadError
from ..imaging import read_image
from ..imaging.decode import max_pixels
from ..imaging.letterbox import fit_size, pad_to
from .augment import AugmentConfig
from .mosaic import mixup, mosaic4
from .records import DetectionData, ImageRecord
from .transforms import (
    augment_hsv,
    box_filter,
    hflip,
    random_affine_matrix,
    random_hsv_gains,
    xyxy_to_cxcywh,
)

__all__ = ["TrainingDataset", "training_boxes", "DEFAULT_MAX_LABELS", "MOSAIC_MAX_LABELS"]

logger = logging.getLogger("yoloxkit.data")


class SharedFlags:
    """A set of indices in shared memory: what one data-loader worker adds, the other workers
    and the main process see (so an unreadable image is reported once, and counted)."""

    def __init__(self, size: int) -> None:
        self.flags = torch.zeros(max(1, size), dtype=torch.uint8).share_memory_()

    def __contains__(self, index: int) -> bool:
        return bool(self.flags[index])

    def add(self, index: int) -> bool:
        """Mark ``index``; whether it was new."""
        new = not bool(self.flags[index])
        self.flags[index] = 1
        return new

    def indices(self) -> list[int]:
        return torch.nonzero(self.flags).flatten().tolist()

DEFAULT_MAX_LABELS = 50
MOSAIC_MAX_LABELS = 120


@dataclass
class _Boxes:
    boxes: np.ndarray  # float64 [N, 4] xyxy, original image pixels
    classes: np.ndarray  # int64 [N]


def training_boxes(record: ImageRecord, num_classes: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The boxes of ``record`` that training uses: ignored (crowd/difficult) boxes left out, the
    rest clipped to the image, zero-size ones dropped. Returns ``(boxes, classes, n_clipped,
    n_dropped)``; a class id outside ``0..num_classes-1`` raises :class:`DatasetError`."""
    boxes = np.asarray(record.boxes, dtype=np.float64).reshape(-1, 4)
    classes = np.asarray(record.class_ids, dtype=np.int64).reshape(-1)
    if len(classes) and (classes.min() < 0 or classes.max() >= num_classes):
        bad = int(classes[(classes < 0) | (classes >= num_classes)][0])
        raise DatasetError(f"{record.path}: class id {bad} is outside the {num_classes} class names")
    if record.ignore is not None and len(record.ignore):
        keep = ~np.asarray(record.ignore, dtype=bool)
        boxes, classes = boxes[keep], classes[keep]
    clipped = boxes.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, record.width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, record.height)
    n_clipped = int(np.any(clipped != boxes, axis=1).sum())
    valid = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped[valid], classes[valid], n_clipped, int((~valid).sum())


class TrainingDataset(Dataset):
    """Augmented training samples of one split (see the module docstring).

    Args:
        data: the split, from :func:`yoloxkit.data.load_dataset`.
        size: input size, ``int`` or ``(h, w)``.
        augment: augmentation settings; ``None`` or :meth:`AugmentConfig.off` for none.
        seed: base seed of the per-sample generators.
        max_labels: rows of the padded targets (official: 120 with Mosaic, 50 without).
        cache: decode and resize every image once, up front, and keep it in RAM.
        close_mosaic_at: first (0-based) epoch without Mosaic/MixUp, the trainer's
            :attr:`~yoloxkit.engine.config.TrainConfig.no_aug_start_epoch`; from that epoch on
            :meth:`set_epoch` switches them off by itself, also after a resume.
    """

    def __init__(
        self,
        data: DetectionData,
        size: int | tuple[int, int] = 640,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        max_labels: int | None = None,
        cache: bool = False,
        progress: bool = True,
        close_mosaic_at: int | None = None,
    ) -> None:
        if not data.records:
            raise DatasetError(f"{data.root}: split {data.split!r} has no images to train on")
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.augment = augment or AugmentConfig.off()
        self.augment.validate()
        self.names = list(data.names)
        self.records = list(data.records)
        self.seed = int(seed)
        self.epoch = 0
        self.mosaic_enabled = self.augment.mosaic_prob > 0
        self.close_mosaic_at = close_mosaic_at
        if max_labels is None:
            max_labels = MOSAIC_MAX_LABELS if self.mosaic_enabled else DEFAULT_MAX_LABELS
        self.max_labels = int(max_labels)
        self.labels: list[_Boxes] = []
        clipped = dropped = 0
        for record in self.records:
            boxes, classes, n_clipped, n_dropped = training_boxes(record, len(self.names))
            self.labels.append(_Boxes(boxes, classes))
            clipped += n_clipped
            dropped += n_dropped
        self.labelled = np.array([i for i, item in enumerate(self.labels) if len(item.boxes)], dtype=np.int64)
        self.warnings: list[str] = []
        # Not logged here: whoever builds the dataset shows them once (the training engine's log,
        # show-batch); logging them here as well printed every line twice.
        if clipped:
            self.warnings.append(f"{data.split}: clipped {_boxes(clipped)} reaching outside their image")
        if dropped:
            self.warnings.append(f"{data.split}: dropped {_boxes(dropped)} of zero size")
        max_pixels()  # an invalid YOLOXKIT_MAX_PIXELS stops here, in one line, not in a loader worker
        self._cache: list[np.ndarray | None] | None = None
        self._unreadable = SharedFlags(len(self.records))
        if cache:
            self.cache_images(progress=progress)

    # --- epochs and switches --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples ``__getitem__`` produces."""
        self.epoch = int(epoch)
        if self.close_mosaic_at is not None:
            self.mosaic_enabled = self.augment.mosaic_prob > 0 and self.epoch < self.close_mosaic_at

    def close_mosaic(self) -> None:
        """Stop using Mosaic and MixUp (HSV and flip stay, as in the official last epochs)."""
        self.mosaic_enabled = False

    # --- images -------------------------------------------------------------------------------

    def tile_size(self, index: int) -> tuple[int, int]:
        """``(h, w)`` of image ``index`` once resized to fit the input size."""
        record = self.records[index]
        _, new_h, new_w = fit_size(record.height, record.width, self.size)
        return new_h, new_w

    def _decode_resized(self, index: int) -> np.ndarray:
        import cv2

        record = self.records[index]
        image = read_image(record.path)
        new_h, new_w = self.tile_size(index)
        if image.shape[:2] != (new_h, new_w):
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        return image

    def load_image(self, index: int) -> np.ndarray:
        """Image ``index`` resized to fit the input size (keep ratio, no padding)."""
        if self._cache is not None:
            image = self._cache[index]
            if image is None:
                raise ImageReadError(f"cannot read image {self.records[index].path}")
            return image
        return self._decode_resized(index)

    def cache_images(self, progress: bool = True, threads: int = 4) -> None:
        """Decode and resize every image once and keep it in RAM (unreadable ones are remembered)."""
        from tqdm import tqdm

        total = sum(h * w * 3 for h, w in (self.tile_size(i) for i in range(len(self))))
        logger.info("caching %d images in RAM (%.1f GB)", len(self), total / 1e9)

        def load(index: int) -> np.ndarray | None:
            try:
                return self._decode_resized(index)
            except ImageReadError as exc:
                logger.warning("%s; it will be skipped", exc)
                return None

        with ThreadPoolExecutor(max_workers=threads) as pool:
            images = list(tqdm(pool.map(load, range(len(self))), total=len(self), desc="caching images",
                               unit="img", disable=not progress, leave=False))
        self._cache = images

    def _readable(self, index: int) -> int:
        """``index`` or, if its image cannot be decoded, the next index whose image can."""
        for step in range(len(self)):
            candidate = (index + step) % len(self)
            if candidate in self._unreadable:
                continue
            if self._cache is not None:
                if self._cache[candidate] is not None:
                    return candidate
                self._unreadable.add(candidate)
                continue
            return candidate
        raise DatasetError("no image of the training split can be read")

    def unreadable_paths(self) -> list[str]:
        """The images found unreadable so far, by this process and its loader workers."""
        return [str(self.records[i].path) for i in self._unreadable.indices()]

    # --- samples ------------------------------------------------------------------------------

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        index = int(index)
        for _ in range(len(self) + 1):
            rng = np.random.default_rng([self.seed, self.epoch, index])
            try:
                return self._sample(index, rng)
            except _Unreadable as exc:
                if self._unreadable.add(exc.index):  # once per image, over every worker
                    logger.warning("%s; using the next image instead", exc.message)
        raise DatasetError("no image of the training split can be read")

    def _load_checked(self, index: int) -> np.ndarray:
        try:
            return self.load_image(index)
        except ImageReadError as exc:
            raise _Unreadable(index, str(exc)) from None

    def _sample(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        aug = self.augment
        use_mosaic = self.mosaic_enabled and aug.mosaic_prob > 0 and rng.uniform() < aug.mosaic_prob
        if use_mosaic:
            image, boxes, classes = self._mosaic(index, rng)
        else:
            index = self._readable(index)
            image = self._load_checked(index)
            ratio = fit_size(self.records[index].height, self.records[index].width, self.size)[0]
            boxes, classes = self.labels[index].boxes * ratio, self.labels[index].classes
        return self._finish(image, boxes, classes, rng)

    def _mosaic(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        aug = self.augment
        height, width = self.size
        centre = (int(rng.uniform(0.5 * width, 1.5 * width)), int(rng.uniform(0.5 * height, 1.5 * height)))
        chosen = [index] + [int(i) for i in rng.integers(0, len(self), 3)]
        matrix = random_affine_matrix(rng, self.size, aug.degrees, aug.translate, aug.mosaic_scale, aug.shear)
        tiles, tile_classes = [], []
        for i in chosen:
            i = self._readable(i)
            ratio = fit_size(self.records[i].height, self.records[i].width, self.size)[0]
            tiles.append((self.tile_size(i), (lambda i=i: self._load_checked(i)), self.labels[i].boxes * ratio))
            tile_classes.append(self.labels[i].classes)
        image, boxes, owners = mosaic4(tiles, centre, matrix, self.size)
        classes = np.concatenate(tile_classes) if owners else np.zeros(0, dtype=np.int64)
        if aug.enable_mixup and len(boxes) and len(self.labelled) and rng.uniform() < aug.mixup_prob:
            other = int(self.labelled[rng.integers(0, len(self.labelled))])
            other = self._readable(other)
            ratio = fit_size(self.records[other].height, self.records[other].width, self.size)[0]
            image, other_boxes = mixup(image, self._load_checked(other), self.labels[other].boxes * ratio,
                                       rng, aug.mixup_scale)
            boxes = np.concatenate([boxes, other_boxes])
            classes = np.concatenate([classes, self.labels[other].classes])
        return image, boxes, classes

    def _finish(self, image: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """HSV, flip, pad to the input size, filter boxes, pad targets (the official TrainTransform,
        with its handling of samples without boxes unless ``keep_background``)."""
        aug = self.augment
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        classes = np.asarray(classes).reshape(-1)
        official = not aug.keep_background
        if official and len(boxes) == 0:
            return self._pack(image, boxes, classes)
        original, original_boxes = image, boxes  # HSV and flip return new arrays
        if aug.hsv_prob > 0 and rng.uniform() < aug.hsv_prob:
            image = augment_hsv(image, random_hsv_gains(rng))
        if aug.flip_prob > 0 and rng.uniform() < aug.flip_prob:
            image, boxes = hflip(image, boxes)
        keep = box_filter(boxes, aug.min_box_side, aug.min_box_area, aug.max_box_aspect)
        if official and not keep.any():
            return self._pack(original, original_boxes, classes)
        return self._pack(image, boxes[keep], classes[keep])

    def _pack(self, image: np.ndarray, boxes: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The image padded to the input size and the first ``max_labels`` boxes as padded
        ``(class, cx, cy, w, h)`` targets."""
        if image.shape[:2] != tuple(self.size):
            image = pad_to(image, self.size)
        targets = np.zeros((self.max_labels, 5), dtype=np.float32)
        kept = xyxy_to_cxcywh(boxes)[: self.max_labels]
        targets[: len(kept), 0] = classes[: self.max_labels]
        targets[: len(kept), 1:] = kept
        return np.ascontiguousarray(image), targets


def _boxes(count: int) -> str:
    return f"{count} box" if count == 1 else f"{count} boxes"


class _Unreadable(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
