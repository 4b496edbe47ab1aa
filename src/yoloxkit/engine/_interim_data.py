"""TEMPORARY letterbox-only training dataset, used until yoloxkit.data's pipeline lands."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.records import DetectionData


class LetterboxDataset(Dataset):
    def __init__(self, data: DetectionData, size: int, flip_prob: float = 0.5, max_labels: int = 50) -> None:
        self.data, self.size, self.flip_prob, self.max_labels = data, size, flip_prob, max_labels
        self.warnings: list[str] = []

    def __len__(self) -> int:
        return len(self.data.records)

    def __getitem__(self, index: int):
        record = self.data.records[index]
        image = cv2.imread(str(record.path))
        canvas = np.full((self.size, self.size, 3), 114, dtype=np.uint8)
        targets = np.zeros((self.max_labels, 5), dtype=np.float32)
        if image is None:
            return torch.from_numpy(canvas.transpose(2, 0, 1).astype(np.float32)), torch.from_numpy(targets)
        h, w = image.shape[:2]
        r = min(self.size / h, self.size / w)
        nh, nw = int(h * r), int(w * r)
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        boxes = record.boxes.astype(np.float32) * r
        keep = np.ones(len(boxes), dtype=bool) if record.ignore is None else ~record.ignore.astype(bool)
        boxes, classes = boxes[keep], record.class_ids[keep]
        if np.random.rand() < self.flip_prob:
            canvas[:, :nw] = canvas[:, :nw][:, ::-1]
            boxes[:, [0, 2]] = nw - boxes[:, [2, 0]]
        cxcywh = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                           boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
        ok = (cxcywh[:, 2] > 1) & (cxcywh[:, 3] > 1)
        cxcywh, classes = cxcywh[ok][: self.max_labels], classes[ok][: self.max_labels]
        targets[: len(cxcywh), 0] = classes
        targets[: len(cxcywh), 1:] = cxcywh
        return torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1)).astype(np.float32)), torch.from_numpy(targets)


def build_train_dataset(data: DetectionData, cfg) -> LetterboxDataset:
    return LetterboxDataset(data, cfg.size, 0.0 if cfg.no_aug else cfg.flip_prob)


def collate(batch):
    images, targets = zip(*batch)
    return torch.stack(images), torch.stack(targets)
