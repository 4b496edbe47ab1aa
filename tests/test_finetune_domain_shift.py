"""Fine-tuning across a domain shift (CI-sized version of issue 27's acceptance).

A handful of ../shared/data/bccd images (blood cells under a microscope; no COCO class looks like
them), from the bundled COCO weights: the default recipe, which trains the whole network but the
stem, adapts where the frozen-trunk recipe cannot, and no epoch falls below the starting weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.train_subset import one_thread
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.trainer import Trainer

TRAIN_IMAGES, VAL_IMAGES, SIZE, EPOCHS, BATCH = 48, 16, 256, 6, 4


def make_voc_subset(source: Path, dest: Path, counts: dict[str, int]) -> Path:
    """A VOC folder at ``dest`` with the first ``counts[split]`` images of each split of ``source``
    (annotations and images linked, labels.txt copied)."""
    (dest / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for name in ("Annotations", "JPEGImages"):
        os.symlink((source / name).resolve(), dest / name, target_is_directory=True)
    (dest / "labels.txt").write_text((source / "labels.txt").read_text())
    for split, count in counts.items():
        ids = (source / "ImageSets" / "Main" / f"{split}.txt").read_text().split()[:count]
        (dest / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return dest


@pytest.fixture(scope="module")
def cells(shared_dir, tmp_path_factory):
    return make_voc_subset(shared_dir / "data" / "bccd", tmp_path_factory.mktemp("bccd"),
                           {"train": TRAIN_IMAGES, "val": VAL_IMAGES})


def _curve(data: Path, out: Path, **options) -> tuple[float, list[float]]:
    cfg = TrainConfig(data=str(data), train_split="train", val_split="val", model="yolox-nano", epochs=EPOCHS,
                      batch_size=BATCH, size=SIZE, workers=0, device="cpu", seed=0, multiscale=False, out=str(out),
                      tensorboard=False, progress=False, plots=False, **options)
    trainer = Trainer(cfg, log=lambda _line: None)
    with one_thread():
        trainer.fit()
    history = json.loads((out / "history.json").read_text())
    return trainer.state.start_metric, [row["ap"] for row in history]


@pytest.mark.timeout(600)
def test_default_recipe_adapts_the_trunk_to_a_new_domain_without_collapsing(cells, tmp_path):
    start, adapted = _curve(cells, tmp_path / "default")
    same_start, frozen = _curve(cells, tmp_path / "frozen", freeze_trunk=True)
    print(f"val mAP50: start {start:.1f}; default {[round(a, 1) for a in adapted]}; frozen trunk {[round(a, 1) for a in frozen]}")
    assert same_start == pytest.approx(start)
    assert min(adapted) >= start - 5.0  # no collapse below the starting weights
    assert max(adapted) > max(frozen) + 3.0  # the trunk adapts where the head alone cannot
