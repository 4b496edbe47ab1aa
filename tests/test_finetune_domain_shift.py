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


def _config(data: Path, out: Path, **options) -> TrainConfig:
    return TrainConfig(data=str(data), train_split="train", val_split="val", model="yolox-nano", epochs=EPOCHS,
                       batch_size=BATCH, size=SIZE, workers=0, device="cpu", seed=0, multiscale=False, out=str(out),
                       tensorboard=False, progress=False, plots=False, **options)


def _curve(data: Path, out: Path, **options) -> tuple[Trainer, list[str], list[float]]:
    lines: list[str] = []
    trainer = Trainer(_config(data, out, **options), log=lines.append)
    with one_thread():
        trainer.fit()
    history = json.loads((out / "history.json").read_text())
    return trainer, lines, [row["ap"] for row in history]


@pytest.mark.timeout(600)
def test_default_recipe_adapts_the_trunk_to_a_new_domain_without_collapsing(cells, tmp_path):
    default, lines, adapted = _curve(cells, tmp_path / "default")
    frozen_run, _, frozen = _curve(cells, tmp_path / "frozen", freeze_trunk=True)
    start = default.state.start_metric
    print(f"val mAP50: start {start:.1f}; default {[round(a, 1) for a in adapted]}; frozen trunk {[round(a, 1) for a in frozen]}")
    assert frozen_run.state.start_metric == pytest.approx(start)
    assert min(adapted) >= start - 5.0  # no collapse below the starting weights
    assert max(adapted) > max(frozen) + 3.0  # the trunk adapts where the head alone cannot
    # the domain-shift rule raised the lr and started the L1 loss after epoch 0 (the cells score far
    # below nano's COCO AP), and the run's config.json and a resume keep the raised lr
    recipe_lr = TrainConfig(model="yolox-nano", batch_size=BATCH).resolved().lr
    raised = 1.5 * recipe_lr
    assert default.parts.schedule.base_lr == pytest.approx(raised)
    assert any(line.startswith("domain shift:") and f"the lr is {raised:g}" in line for line in lines)
    assert default.parts.criterion.use_l1 is True  # and the L1 loss ran from the first epoch
    boundary = [line for line in lines if "Mosaic/MixUp off" in line]
    assert len(boundary) == 1 and "L1 loss on" not in boundary[0]  # it was on already
    assert json.loads((tmp_path / "default" / "config.json").read_text())["lr"] == pytest.approx(raised)
    resumed = Trainer(_config(cells, tmp_path / "default", resume=True), log=lambda _line: None)
    resumed.setup()
    assert resumed.parts.schedule.base_lr == pytest.approx(raised) and resumed.cfg.lr == pytest.approx(raised)
    assert resumed.parts.criterion.use_l1 is True  # restored: what the boundary line reads
