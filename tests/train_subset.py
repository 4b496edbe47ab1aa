"""Small COCO-layout subsets of ../shared/data/coco-mini for the training tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

from yoloxkit.engine.config import TrainConfig


def make_subset(coco_mini: Path, dest: Path, count: int, split: str = "train2017", splits: tuple[str, ...] = ("train2017",)) -> Path:
    """Write ``dest/annotations/instances_S.json`` for each name in ``splits``, holding the first
    ``count`` annotated images of coco-mini ``split`` (full categories list kept), and link
    ``dest/S`` to the image folder. Returns ``dest``."""
    source = json.loads((coco_mini / "annotations" / f"instances_{split}.json").read_text())
    annotated = sorted({a["image_id"] for a in source["annotations"] if not a.get("iscrowd")})
    keep = set(annotated[:count])
    subset = {
        **{k: v for k, v in source.items() if k not in ("images", "annotations")},
        "images": [im for im in source["images"] if im["id"] in keep],
        "annotations": [a for a in source["annotations"] if a["image_id"] in keep],
    }
    (dest / "annotations").mkdir(parents=True, exist_ok=True)
    for name in splits:
        (dest / "annotations" / f"instances_{name}.json").write_text(json.dumps(subset))
        link = dest / name
        if not link.exists():
            os.symlink((coco_mini / split).resolve(), link, target_is_directory=True)
    return dest


def tiny_config(data: Path, out: Path | None, **overrides) -> TrainConfig:
    """A few-iteration yolox-nano run at 128 px on CPU, with no TensorBoard, progress bar or plots;
    ``overrides`` set any other field."""
    base = dict(
        data=str(data), model="yolox-nano", epochs=2, batch_size=2, size=128, device="cpu",
        warmup_epochs=1, no_aug_epochs=1, out=None if out is None else str(out),
        tensorboard=False, progress=False, plots=False,
    )
    base.update(overrides)
    return TrainConfig(**base)


def step_config(data: Path, out: Path | None, **overrides) -> TrainConfig:
    """:func:`tiny_config` at 64 px (multi-scale 64-96), 2 steps per epoch, evaluated every epoch:
    the runs of the hook, control and tracker tests."""
    base = dict(size=64, size_range=(64, 96), max_iters_per_epoch=2, workers=0, eval_interval=1, seed=3)
    return tiny_config(data, out, **{**base, **overrides})


class one_thread:
    """Context manager: run torch on one thread (small training batches gain nothing from more,
    and on a shared 2-core machine oversubscribed OpenMP threads slow them down many times)."""

    def __enter__(self):
        import torch

        self.previous = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.previous)
        return False
