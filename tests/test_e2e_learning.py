"""A CI-sized learning check of the end-to-end model: training the PSS branch (detector frozen,
bundled weights) on a few real images makes the NMS-free duplicates fall, and keeps the objects."""

import torch
from torchvision.ops import box_iou

import yoloxkit
from yoloxkit.data import load_dataset
from yoloxkit.data.augment import AugmentConfig
from yoloxkit.data.dataset import TrainingDataset
from yoloxkit.data.loader import collate
from yoloxkit.engine.freeze import freeze_detector, keep_frozen_eval
from yoloxkit.losses import YoloxLoss
from yoloxkit.packaged import bundled_weights_path
from yoloxkit.weights import load_weights

SIZE = 256


def _batch(coco_mini, count=4):
    data = load_dataset(coco_mini, "train2017")
    dataset = TrainingDataset(data, SIZE, AugmentConfig.off(), seed=0, progress=False)
    return collate([dataset[i] for i in range(count)])


def _duplicates_and_found(model, images, targets, conf=0.3):
    """(gts hit by more than one same-class detection at IoU >= 0.5, gts hit at all), top-k, no NMS."""
    model.eval()
    with torch.no_grad():
        predictions = model(images)
    duplicated = found = 0
    for pred, target in zip(predictions, targets):
        target = target[target.sum(dim=1) > 0]
        class_prob, class_ids = pred[:, 5:].max(dim=1)
        scores = pred[:, 4] * class_prob
        keep = scores >= conf
        boxes = torch.cat([pred[keep, :2] - pred[keep, 2:4] / 2, pred[keep, :2] + pred[keep, 2:4] / 2], dim=1)
        gt = torch.cat([target[:, 1:3] - target[:, 3:5] / 2, target[:, 1:3] + target[:, 3:5] / 2], dim=1)
        hits = (box_iou(gt, boxes) >= 0.5) & (target[:, :1].long() == class_ids[keep][None])
        duplicated += int((hits.sum(dim=1) > 1).sum())
        found += int(hits.any(dim=1).sum())
    return duplicated, found


def _settle_batchnorm(model, images):
    """Running statistics of the branch's BatchNorms for its final weights (momentum 0.03 lags
    behind a short, fast run): one cumulative pass in train mode."""
    norms = [m for m in model.head.pss_convs.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    keep_frozen_eval(model)
    with torch.no_grad():
        model(images)


def test_training_the_pss_branch_removes_nms_free_duplicates(coco_mini):
    torch.manual_seed(0)
    images, targets = _batch(coco_mini)
    model = yoloxkit.build_model("yolox-nano-e2e")
    load_weights(model, bundled_weights_path())
    for conv in model.head.pss_preds:  # σ(pss) = 1: the base detector without NMS
        torch.nn.init.constant_(conv.bias, 40.0)
    base_duplicated, base_found = _duplicates_and_found(model, images, targets)
    assert base_duplicated >= 5  # without NMS, the base model has many duplicates

    for conv in model.head.pss_preds:
        torch.nn.init.constant_(conv.bias, 0.0)
    freeze_detector(model)
    model.criterion = YoloxLoss(detector_loss=False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(50):
        model.train()
        keep_frozen_eval(model)
        loss = model(images, targets)["pss_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _settle_batchnorm(model, images)
    duplicated, found = _duplicates_and_found(model, images, targets)
    assert duplicated <= base_duplicated // 2, (duplicated, base_duplicated)
    assert found >= 0.8 * base_found, (found, base_found)
