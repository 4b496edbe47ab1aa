"""Fine-tuning initialisation: tensors load by shape, class rows map by name, folded convs rescale."""

from __future__ import annotations

import math

import pytest
import torch

from yoloxkit.coco_names import COCO_NAMES
from yoloxkit.engine.finetune import load_for_finetune, map_classes, rescale_folded_convs
from yoloxkit.errors import WeightsMismatchError
from yoloxkit.models import build_network
from yoloxkit.weights import save_checkpoint


@pytest.fixture(scope="module")
def coco_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_network("yolox-nano", 80)
    with torch.no_grad():
        for conv in model.head.cls_preds:
            conv.weight.normal_()
            conv.bias.normal_()
    path = tmp_path_factory.mktemp("ft") / "coco.pth"
    save_checkpoint(path, model, COCO_NAMES, "yolox-nano")
    return path, model.state_dict()


def test_map_classes_by_name():
    assert map_classes(["dog", "cat", "unicorn"], ["cat", "dog"]) == [1, 0, None]
    assert map_classes(["a"], None) == [None]


def test_subset_of_coco_keeps_matching_class_rows(coco_checkpoint):
    path, source = coco_checkpoint
    names = ["dog", "person", "unicorn"]
    model = build_network("yolox-nano", len(names))
    fresh_bias = model.head.cls_preds[0].bias.detach().clone()
    report = load_for_finetune(model, path, names)
    own = model.state_dict()
    for level in range(3):
        w, b = own[f"head.cls_preds.{level}.weight"], own[f"head.cls_preds.{level}.bias"]
        src_w, src_b = source[f"head.cls_preds.{level}.weight"], source[f"head.cls_preds.{level}.bias"]
        assert torch.equal(w[0], src_w[COCO_NAMES.index("dog")]) and torch.equal(b[1], src_b[COCO_NAMES.index("person")])
        assert b[2] == pytest.approx(-math.log((1 - 0.01) / 0.01))  # the new class keeps its prior init
    assert torch.equal(own["backbone.backbone.stem.conv.conv.weight"], source["backbone.backbone.stem.conv.conv.weight"])
    assert report.reinitialised and report.mapped_classes == ["dog", "person"] and report.new_classes == ["unicorn"]
    assert "re-initialised" in report.message() and "unicorn" in report.message()
    assert fresh_bias.shape == (3,)


def test_same_classes_load_everything(coco_checkpoint):
    path, source = coco_checkpoint
    model = build_network("yolox-nano", 80)
    report = load_for_finetune(model, path, list(COCO_NAMES))
    assert report.loaded == report.total and not report.reinitialised
    assert all(torch.equal(v, source[k]) for k, v in model.state_dict().items())


def test_other_model_size_is_a_clear_error(coco_checkpoint):
    path, _ = coco_checkpoint
    with pytest.raises(WeightsMismatchError, match="--model"):
        load_for_finetune(build_network("yolox-s", 3), path, ["a", "b", "c"])


def test_rescale_folded_convs_keeps_the_function():
    torch.manual_seed(1)
    model = build_network("yolox-nano", 4).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.uniform_(0.5, 2.0)
                module.running_mean.normal_()
        stem = model.backbone.backbone.stem.conv
        stem.conv.weight.mul_(0.01)  # a kernel with its BatchNorm folded in: tiny weights
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        before = model(x)
        changed = rescale_folded_convs(model)
        after = model(x)
    assert changed >= 1
    norms = stem.conv.weight.flatten(1).norm(dim=1)
    assert bool((norms >= 1.0 - 1e-5).all())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-3)
