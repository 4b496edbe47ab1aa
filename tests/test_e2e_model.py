"""The end-to-end (NMS-free) models: figures, weights, stop-gradient, the frozen detector."""

import pytest
import torch

import yoloxkit
from yoloxkit.engine.freeze import freeze_detector, keep_frozen_eval
from yoloxkit.losses import YoloxLoss
from yoloxkit.models import MODEL_SPECS, get_spec
from yoloxkit.models.info import count_gflops, count_parameters
from yoloxkit.models.selection_cues import NUM_CUES
from yoloxkit.packaged import bundled_weights_path
from yoloxkit.weights import load_weights


def test_darknet53_e2e_has_the_papers_params_and_gflops():
    model = yoloxkit.build_model("yolox-darknet53-e2e")
    base = yoloxkit.build_model("yolox-darknet53")
    params = count_parameters(model)
    # per level: two 3x3 convs with BatchNorm and a 1x1 prediction conv (the paper's 67.27 M exactly),
    # and the 4 selection-cue channels the first 3x3 conv reads beside the features
    assert params - count_parameters(base) == 3 * (2 * (256 * 256 * 9 + 2 * 256) + 257) + 3 * (4 * 9 * 256)
    assert params == 67_295_202 and round(params / 1e6, 2) == 67.30 and abs(params / 1e6 - 67.27) <= 0.3
    assert not hasattr(model.head, "pss_cues")  # only a depthwise head needs the 1x1 cue mixer
    # GFLOPs counted as the official get_model_info does (LeakyReLU included): the paper's two-conv
    # branch gives its 205.1; the cue channels of the first 3x3 conv add 4*9 MACs at each of its
    # 256 outputs over the 80x80 + 40x40 + 20x20 cells of a 640 input
    gflops = count_gflops(model, 640)
    cues = 2 * (NUM_CUES * 9) * 256 * (80 * 80 + 40 * 40 + 20 * 20) / 1e9
    assert round(gflops, 2) == MODEL_SPECS["yolox-darknet53-e2e"].gflops == 205.28
    assert round(gflops - cues, 1) == 205.1


def test_every_zoo_model_has_an_e2e_variant_by_name_and_by_flag():
    bases = [name for name, spec in MODEL_SPECS.items() if not spec.end_to_end and not spec.roadmap]
    assert len(bases) == 7
    for name in bases:
        spec = get_spec(name + "-e2e")
        assert spec.end_to_end and spec.base == name and spec.detector == name
    assert get_spec("darknet53_e2e").name == "yolox-darknet53-e2e"
    by_flag = yoloxkit.build_model("yolox-nano", end_to_end=True)
    assert by_flag.end_to_end and not yoloxkit.build_model("yolox-nano").end_to_end
    # nano's branch is depthwise-separable like its head's own convs, so a 1x1 conv mixes the cues in
    assert any(m.groups > 1 for m in by_flag.head.pss_convs.modules() if isinstance(m, torch.nn.Conv2d))
    assert [m.in_channels for m in by_flag.head.pss_cues] == [64 + NUM_CUES] * 3
    # a regular head's first 3x3 conv reads them beside the features
    tiny = yoloxkit.build_model("yolox-tiny-e2e").head
    assert not hasattr(tiny, "pss_cues")
    assert [convs[0].conv.in_channels for convs in tiny.pss_convs] == [96 + NUM_CUES] * 3


def test_base_weights_load_into_the_e2e_model_and_only_the_branch_is_new(caplog):
    base = yoloxkit.build_model("yolox-nano").eval()
    load_weights(base, bundled_weights_path())
    e2e = yoloxkit.build_model("yolox-nano-e2e").eval()
    with caplog.at_level("WARNING", logger="yoloxkit"):
        load_weights(e2e, bundled_weights_path())
    assert "PSS branch" in caplog.text and "starts fresh" in caplog.text
    own, theirs = e2e.state_dict(), base.state_dict()
    assert set(theirs) <= set(own)
    assert all(torch.equal(own[k], v) for k, v in theirs.items())
    assert all(".pss_" in k for k in set(own) - set(theirs))
    # With σ(pss) = 1 the e2e output is the base output.
    for conv in e2e.head.pss_preds:
        torch.nn.init.constant_(conv.bias, 40.0)
    images = torch.rand(1, 3, 128, 128) * 255
    with torch.no_grad():
        assert torch.allclose(e2e(images), base(images), atol=1e-5)


def _targets():
    targets = torch.zeros(2, 4, 5)
    targets[0, 0] = torch.tensor([1.0, 60, 60, 40, 50])
    targets[0, 1] = torch.tensor([2.0, 100, 90, 30, 30])
    targets[1, 0] = torch.tensor([0.0, 30, 40, 20, 20])
    return targets


@pytest.mark.parametrize(("name", "pss_targets"), [
    ("yolox-nano-e2e", "detector"), ("yolox-nano-e2e", "gt"),
    ("yolox-tiny-e2e", "detector"),  # regular convs: the cues enter the first 3x3 conv, no mixer
])
def test_pss_loss_gives_the_detector_no_gradient(name, pss_targets):
    torch.manual_seed(0)
    model = yoloxkit.build_model(name, num_classes=3).train()
    model.criterion = YoloxLoss(pss_targets=pss_targets)  # a criterion built whole
    losses = model(torch.rand(2, 3, 128, 128) * 255, _targets())
    assert float(losses["pss_loss"].detach()) > 0
    losses["pss_loss"].backward()
    detector = [n for n, p in model.named_parameters() if ".pss_" not in n and p.grad is not None]
    branch = [n for n, p in model.named_parameters() if ".pss_" in n and p.grad is not None and p.grad.abs().sum() > 0]
    assert detector == [] and len(branch) > 0
    # and the detector's own loss does not reach the branch
    model.zero_grad(set_to_none=True)
    losses = model(torch.rand(2, 3, 128, 128) * 255, _targets())
    (losses["total_loss"] - losses["pss_loss"]).backward()
    assert all(p.grad is None or not p.grad.any() for n, p in model.named_parameters() if ".pss_" in n)


def test_frozen_detector_trains_only_the_branch_and_skips_its_own_loss():
    model = yoloxkit.build_model("yolox-nano-e2e", num_classes=3)
    frozen = freeze_detector(model)
    assert frozen == count_parameters(yoloxkit.build_model("yolox-nano", num_classes=3))
    assert all(p.requires_grad == (".pss_" in n) for n, p in model.named_parameters())
    model.train()
    keep_frozen_eval(model)
    assert not model.backbone.backbone.stem.conv.bn.training and not model.head.stems[0].bn.training
    assert model.head.pss_convs[0][0].dconv.bn.training
    model.criterion = YoloxLoss(detector_loss=False)
    losses = model(torch.rand(2, 3, 128, 128) * 255, _targets())
    assert float(losses["iou_loss"]) == 0 and float(losses["total_loss"]) == float(losses["pss_loss"]) > 0
    losses["total_loss"].backward()


def test_freeze_detector_on_a_base_model_is_one_line(capsys, coco_mini):
    from yoloxkit.cli import main

    assert main(["train", "--data", str(coco_mini), "--model", "yolox-nano", "--freeze-detector", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "yolox-nano-e2e" in err
