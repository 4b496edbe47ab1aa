"""Learning works (small CI version of issue 3's acceptance): fine-tuning the bundled nano
weights on a few coco-mini images raises the COCO AP measured on those images."""

from __future__ import annotations

import json

import pytest

from tests.train_subset import make_subset, one_thread
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.evaluation import evaluate_model
from yoloxkit.engine.trainer import Trainer
from yoloxkit.weights import bundled_weights_path, load_weights

IMAGES, SIZE, EPOCHS = 8, 256, 30


@pytest.mark.timeout(600)
def test_finetuning_bundled_nano_raises_ap_on_its_training_images(coco_mini, tmp_path):
    from yoloxkit.data import load_dataset
    from yoloxkit.models import build_network

    data = make_subset(coco_mini, tmp_path / "data", IMAGES, splits=("train2017", "val2017"))
    with one_thread():
        model = build_network("yolox-nano", 80)
        names = load_weights(model, bundled_weights_path())
        before, _, _ = evaluate_model(model, names, load_dataset(data, split="val2017"), SIZE)
        cfg = TrainConfig(
            data=str(data), model="yolox-nano", weights=str(bundled_weights_path()), recipe="official",
            epochs=EPOCHS, batch_size=4,
            size=SIZE, workers=0, device="cpu", seed=0, no_aug=True, warmup_epochs=2,
            no_aug_epochs=10, eval_interval=EPOCHS, out=str(tmp_path / "out"), tensorboard=False, progress=False,
            plots=False,
        )
        result = Trainer(cfg, log=print).fit()
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    after = history[-1]["ap"]
    print(f"AP on the {IMAGES} training images at {SIZE}: before {before:.2f}, after {EPOCHS} epochs {after:.2f}")
    assert result.best_metric == pytest.approx(max(r["ap"] for r in history if "ap" in r))
    first, last = history[0], history[-1]
    assert last["cls_loss"] < first["cls_loss"] and last["conf_loss"] < first["conf_loss"]
    assert after >= before + 5.0
