"""Fine-tuning on one's own classes (CI-sized version of issue 10's acceptance).

A handful of ../shared/data/coco-mini-3cls images (COCO merged into person / vehicle / animal):
the default recipe, started from the bundled COCO weights, fits the two new class rows, scores
far above the same weights with fresh rows, keeps learning, and beats a start from random weights.
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.train_subset import make_subset, one_thread
from yoloxkit.data import load_dataset
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.evaluation import evaluate_model
from yoloxkit.engine.finetune import load_for_finetune
from yoloxkit.engine.trainer import Trainer
from yoloxkit.models import build_network
from yoloxkit.packaged import bundled_weights_path

IMAGES, SIZE, EPOCHS = 16, 256, 3


@pytest.fixture(scope="module")
def three_classes(shared_dir, tmp_path_factory):
    source = shared_dir / "data" / "coco-mini-3cls"
    root = tmp_path_factory.mktemp("three-classes")
    make_subset(source, root, IMAGES, split="train2017", splits=("train2017",))
    make_subset(source, root, IMAGES, split="val2017", splits=("val2017",))
    return root


def _train(data, out, **options) -> tuple[list[dict], Trainer]:
    cfg = TrainConfig(data=str(data), model="yolox-nano", epochs=EPOCHS, batch_size=8, size=SIZE, workers=0,
                      device="cpu", seed=0, multiscale=False, out=str(out), tensorboard=False, progress=False,
                      plots=False, **options)
    lines: list[str] = []
    trainer = Trainer(cfg, log=lines.append)
    with one_thread():
        trainer.fit()
    trainer.lines = lines  # type: ignore[attr-defined]
    return json.loads((out / "history.json").read_text()), trainer


@pytest.mark.timeout(600)
def test_pretrained_start_learns_new_classes_and_beats_scratch(three_classes, tmp_path):
    train, val = load_dataset(three_classes, split="train2017"), load_dataset(three_classes, split="val2017")
    names = list(train.names)
    assert names == ["person", "vehicle", "animal"]
    with one_thread():
        fresh_rows = build_network("yolox-nano", num_classes=3)
        report = load_for_finetune(fresh_rows, bundled_weights_path(), names, "yolox-nano")
        unfitted, _, _ = evaluate_model(fresh_rows, names, val, SIZE)
    assert report.new_classes == ["vehicle", "animal"]

    history, trainer = _train(three_classes, tmp_path / "pretrained")
    lines = trainer.lines  # type: ignore[attr-defined]
    assert lines[0].startswith("weights: the bundled yolox-nano COCO weights") and "recipe finetune" in lines[0]
    assert any("fitted 2 new class rows" in line for line in lines)
    start = trainer.state.start_metric
    aps = [row["ap"] for row in history]
    print(f"AP: fresh rows {unfitted:.2f}; fitted start {start:.2f}; epochs {[round(a, 2) for a in aps]}")
    assert len(aps) == EPOCHS  # the fine-tuning recipe evaluates every epoch
    assert start > unfitted + 5.0  # the fitted rows already detect vehicles and animals
    assert max(aps) >= start - 1.0 and min(aps) >= 0.5 * aps[-1]
    assert aps[-1] > unfitted + 5.0
    best = torch.load(tmp_path / "pretrained" / "best.pth", weights_only=True)
    assert best["names"] == names

    scratch, scratch_trainer = _train(three_classes, tmp_path / "scratch", weights="none")
    assert scratch_trainer.cfg.recipe == "official"
    assert scratch_trainer.lines[0].startswith("weights: random initialisation")  # type: ignore[attr-defined]
    assert scratch[-1]["ap"] < aps[-1] - 10.0
