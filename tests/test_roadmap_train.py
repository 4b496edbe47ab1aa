"""Every row of the paper's roadmap (Table 2) trains end to end and exports to an ONNX file that
predict runs (issue 31). Darknet-53 at 64-96 px on CPU: a few seconds per row."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from torchvision.ops import box_iou

import yoloxkit
from tests.train_subset import one_thread, step_config
from yoloxkit.cli import main
from yoloxkit.engine.trainer import Trainer
from yoloxkit.export import ExportOptions, export_model
from yoloxkit.models import get_spec

NEW_ROWS = ["yolox-roadmap-baseline", "yolox-roadmap-decoupled", "yolox-roadmap-strongaug",
            "yolox-roadmap-anchorfree", "yolox-roadmap-multipos"]
STEPS = 8


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 96x96 images holding bright boxes, and their targets (class, cx, cy, w, h)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, 96, 96, generator=generator) * 40
    boxes = [[(0, 30, 30, 24, 20), (1, 70, 64, 30, 40)], [(2, 48, 48, 60, 50), (0, 20, 76, 14, 16)]]
    targets = torch.zeros(2, 4, 5)
    for b, rows in enumerate(boxes):
        for k, (cls, cx, cy, w, h) in enumerate(rows):
            images[b, :, cy - h // 2: cy + h // 2, cx - w // 2: cx + w // 2] = 200 + 20 * cls
            targets[b, k] = torch.tensor([cls, cx, cy, w, h], dtype=torch.float32)
    return images, targets


@torch.no_grad()
def _settle_batchnorm(model: torch.nn.Module, images: torch.Tensor) -> None:
    """Give every BatchNorm the statistics of ``images``: after a few steps from random weights the
    running averages still hold mostly their initial values, and an eval forward with them blows
    up through Darknet-53's 75 convs (boxes overflow ``exp``)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the passes
    model.train()
    model(images)


@pytest.mark.parametrize("row", NEW_ROWS)
def test_each_row_learns_and_exports_a_runnable_onnx(row, tmp_path, dog_jpg):
    torch.manual_seed(0)
    model = yoloxkit.build_model(row, num_classes=3)
    assert model.criterion.assigner == get_spec(row).assigner
    images, targets = _batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    model.train()
    totals = []
    with one_thread():
        for _ in range(STEPS):
            losses = model(images, targets)
            assert torch.isfinite(losses["total_loss"]), losses
            optimizer.zero_grad()
            losses["total_loss"].backward()
            optimizer.step()
            totals.append(float(losses["total_loss"].detach()))
        assert min(totals[-3:]) < 0.8 * totals[0], totals

        _settle_batchnorm(model, images)
        model.eval()
        onnx_path = tmp_path / f"{row}.onnx"
        options = ExportOptions(size=(64, 64), names=("a", "b", "c"), model_name=row)
        result = export_model(model, "onnx", onnx_path, options)
    assert onnx_path.is_file() and result.max_abs_diff < 1e-3
    # The anchor-based rows cannot give the raw interface (decoding needs their anchor sizes):
    # their file holds decoded boxes, and says so.
    interface = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}["interface"]
    assert interface == ("decoded" if get_spec(row).anchors is not None else "raw")
    with one_thread():
        expected = yoloxkit.Detector.from_model(model, ["a", "b", "c"], 64, conf=1e-5)(str(dog_jpg))[0]
        got = yoloxkit.Detector(weights=str(onnx_path), size=64, conf=1e-5)(str(dog_jpg))[0]
    assert len(got) == len(expected) > 0
    # the same boxes (in any order: an untrained model's scores tie)
    distance = torch.cdist(torch.as_tensor(got.boxes), torch.as_tensor(expected.boxes), p=float("inf"))
    assert float(distance.min(dim=1).values.max()) < 0.05
    if row != NEW_ROWS[0]:
        return  # the command line once, on the row least like YOLOX
    json_out = tmp_path / "pred.json"
    assert main(["predict", str(dog_jpg), "--weights", str(onnx_path), "--size", "64", "--conf", "1e-5",
                 "--no-save", "--json-out", str(json_out)]) == 0
    records = json.loads(json_out.read_text())
    assert len(records) == 1 and len(records[0]["detections"]) == len(got)


def test_train_runs_a_roadmap_row_from_scratch_with_its_recipe_and_assigner(coco_mini_4, tmp_path):
    cfg = step_config(coco_mini_4, tmp_path / "run", model="yolox-roadmap-baseline", epochs=1,
                      batch_size=2, eval_interval=0)
    with one_thread():
        trainer = Trainer(cfg, log=lambda line: None)
        result = trainer.fit()
    assert result.last is not None and result.last.is_file()
    assert trainer.parts.criterion.assigner == "yolov3"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["weights"] == "none" and saved["recipe"] == "official"
    assert saved["mosaic"] is False and saved["mixup"] is False  # the baseline: flips and colour jitter only
    strong = yoloxkit.engine.config.TrainConfig(data=str(coco_mini_4), model="yolox-roadmap-strongaug").resolved()
    assert strong.mosaic and strong.mixup and strong.size_range == (448, 832)


def test_the_baseline_row_learns_the_boxes_it_is_assigned():
    """Assignment, box coding and decoding agree: the anchor-based baseline, overfitting one batch
    (L1 on, as in the tail of its recipe), finds every gt with its own class. (Without L1, a few
    steps from random weights can shrink a lone positive's box until 1 - IoU² stops pulling it;
    docs/roadmap.md.)"""
    torch.manual_seed(0)
    model = yoloxkit.build_model("yolox-roadmap-baseline", num_classes=3)
    model.criterion.use_l1 = True
    images, targets = _batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    with one_thread():
        for _ in range(60):
            loss = model(images, targets)["total_loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            outputs = model.head(model.backbone(images))  # decoded, with the batch's statistics
    for b in range(2):
        scores = outputs[b, :, 4:5] * outputs[b, :, 5:]
        for cls, cx, cy, w, h in targets[b][targets[b].sum(1) > 0].tolist():
            best = outputs[b, int(scores[:, int(cls)].argmax()), :4]
            box = torch.cat([best[:2] - best[2:] / 2, best[:2] + best[2:] / 2])[None]
            truth = torch.tensor([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
            assert float(box_iou(box, truth)) > 0.5, (b, cls)
