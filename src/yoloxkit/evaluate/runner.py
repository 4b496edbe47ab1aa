"""Run a predictor over a dataset split and collect its predictions in dataset class indices."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..data.records import DetectionData
from ..errors import DatasetError
from .predictions import ImagePredictions

__all__ = ["ClassMapping", "PredictFn", "class_mapping", "collect_predictions", "normalise_name"]

# Anything that maps a batch of image paths (or BGR arrays) to one result per image; each result
# has ``boxes`` (xyxy, image pixels), ``scores`` and ``class_ids`` (model class indices).
PredictFn = Callable[[list], Sequence[Any]]


def normalise_name(name: str) -> str:
    """Class names compare case-insensitively with ``_``/``-`` read as spaces."""
    return " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())


class ClassMapping:
    """Maps model class indices to dataset class indices by class name.

    ``model_to_data[i]`` is the dataset index of model class i, or -1 when the dataset has no
    class of that name. ``known`` lists the dataset classes the model can predict.
    """

    def __init__(self, model_names: Sequence[str], data_names: Sequence[str]):
        data_index: dict[str, int] = {}
        for i, name in enumerate(data_names):
            data_index.setdefault(normalise_name(name), i)
        self.model_to_data = np.array(
            [data_index.get(normalise_name(name), -1) for name in model_names], dtype=np.int64
        )
        mapped = set(self.model_to_data[self.model_to_data >= 0].tolist())
        self.known: list[int] = sorted(mapped)
        self.unknown_names: list[str] = [name for i, name in enumerate(data_names) if i not in mapped]
        self.identity = list(model_names) == list(data_names)

    def apply(self, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> ImagePredictions:
        class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        valid = (class_ids >= 0) & (class_ids < len(self.model_to_data))
        data_ids = np.full(len(class_ids), -1, dtype=np.int64)
        data_ids[valid] = self.model_to_data[class_ids[valid]]
        keep = data_ids >= 0
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        return ImagePredictions(boxes[keep], scores[keep], data_ids[keep])


def class_mapping(model_names: Sequence[str], data: DetectionData) -> ClassMapping:
    """Match the model's class names to ``data.names``.

    Raises :class:`DatasetError` when no name matches; warns about dataset classes the model does
    not know (they are left out of the evaluation and reported as ``null``).
    """
    mapping = ClassMapping(model_names, data.names)
    if not mapping.known:
        raise DatasetError(
            f"{data.root}: none of the model's {len(model_names)} class names ({_preview(model_names)}) "
            f"matches the dataset's ({_preview(data.names)})"
        )
    if mapping.unknown_names:
        warnings.warn(
            f"the model does not know {len(mapping.unknown_names)} dataset class(es) "
            f"({_preview(mapping.unknown_names)}); they are left out of the evaluation",
            stacklevel=3,
        )
    return mapping


def _preview(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def collect_predictions(
    predict: PredictFn,
    data: DetectionData,
    mapping: ClassMapping,
    batch_size: int = 8,
    progress: bool = True,
    desc: str = "eval",
) -> list[ImagePredictions]:
    """Call ``predict`` on batches of the split's image paths and return one
    :class:`ImagePredictions` per record, in dataset class indices."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    records = data.records
    out: list[ImagePredictions] = []
    with tqdm(total=len(records), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(records), batch_size):
            batch = [str(r.path) for r in records[start : start + batch_size]]
            results = list(predict(batch))
            if len(results) != len(batch):
                raise RuntimeError(f"predictor returned {len(results)} results for {len(batch)} images")
            out.extend(mapping.apply(r.boxes, r.scores, r.class_ids) for r in results)
            bar.update(len(batch))
    return out
