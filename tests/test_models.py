"""Model zoo: parameter counts, GFLOPs, custom sizes and name handling."""

import pytest
import torch

import yoloxkit
from yoloxkit.models import MODEL_SPECS, get_spec
from yoloxkit.models.info import count_gflops, count_parameters

# the roadmap rows have their own, exact, figure tests (tests/test_roadmap_models.py)
ZOO = [name for name, spec in MODEL_SPECS.items() if not spec.roadmap]


@pytest.mark.parametrize("name", ZOO)
def test_parameter_count_is_exact(name):
    assert count_parameters(yoloxkit.build_model(name)) == MODEL_SPECS[name].params


@pytest.mark.parametrize("name", ZOO)
def test_gflops_within_3_percent_of_paper(name):
    spec = MODEL_SPECS[name]
    gflops = count_gflops(yoloxkit.build_model(name), spec.input_size)
    assert abs(gflops - spec.gflops) / spec.gflops <= 0.03, gflops


def test_custom_depth_width_and_class_count():
    model = yoloxkit.build_model(None, num_classes=3, depth=0.33, width=0.125).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 128, 96))
    assert out.shape == (1, 16 * 12 + 8 * 6 + 4 * 3, 8)
    assert model.head.cls_preds[0].out_channels == 3


def test_nano_uses_depthwise_convolutions_and_darknet_leaky_relu():
    nano = yoloxkit.build_model("yolox-nano")
    assert any(m.groups > 1 for m in nano.modules() if isinstance(m, torch.nn.Conv2d))
    dark = yoloxkit.build_model("yolox-darknet53")
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in dark.modules())
    assert not any(isinstance(m, torch.nn.SiLU) for m in dark.modules())


def test_batchnorm_and_prior_initialisation():
    model = yoloxkit.build_model("yolox-s")
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(bn.eps == 1e-3 and bn.momentum == 0.03 for bn in bns)
    prior = torch.sigmoid(model.head.cls_preds[0].bias).mean().item()
    assert prior == pytest.approx(0.01, rel=1e-4)


def test_decode_maps_raw_outputs_to_input_pixels_row_major():
    model = yoloxkit.build_model("yolox-nano", num_classes=2).eval()
    images = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        decoded = model(images)
        model.head.decode_in_inference = False
        raw = model(images)
    assert decoded.shape == raw.shape == (1, 8 * 12 + 4 * 6 + 2 * 3, 7)
    # stride-8 level first, cells in row-major order: anchor i sits at x = i % 12, y = i // 12
    idx = torch.arange(96)
    assert torch.allclose(decoded[0, :96, 0], (raw[0, :96, 0] + idx % 12) * 8, atol=1e-3)
    assert torch.allclose(decoded[0, :96, 1], (raw[0, :96, 1] + idx // 12) * 8, atol=1e-3)
    assert torch.allclose(decoded[0, :96, 2:4], torch.exp(raw[0, :96, 2:4]) * 8, rtol=1e-4)
    # last level (stride 32): 2 x 3 cells
    assert torch.allclose(decoded[0, -1, :2], (raw[0, -1, :2] + torch.tensor([2.0, 1.0])) * 32, atol=1e-3)
    assert torch.equal(decoded[..., 4:], raw[..., 4:])


@pytest.mark.parametrize("alias", ["yolox_s", "S", "yolox-s"])
def test_name_aliases(alias):
    assert get_spec(alias).name == "yolox-s"


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(yoloxkit.UnknownModelError, match="yolox-nano"):
        yoloxkit.build_model("yolox-huge")


def test_public_build_model_carries_the_loss_and_the_network_alone_does_not():
    from yoloxkit.errors import YoloxkitError
    from yoloxkit.losses import YoloxLoss
    from yoloxkit.models import build_network

    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    targets = torch.zeros(2, 3, 5)
    targets[0, 0] = torch.tensor([1.0, 30, 30, 20, 24])
    model = yoloxkit.build_model("yolox-nano", num_classes=3).train()
    assert isinstance(model.criterion, YoloxLoss) and model.criterion.use_l1 is False
    losses = model(images, targets)
    assert set(losses) == {"total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss", "num_fg"}
    assert float(losses["l1_loss"]) == 0.0 and float(losses["total_loss"]) > 0
    model.criterion.use_l1 = True  # the owner of the criterion switches L1 on
    assert float(model(images, targets)["l1_loss"]) > 0
    assert "criterion" not in "".join(model.state_dict())  # the criterion holds no tensors

    bare = build_network("yolox-nano", num_classes=3).train()
    with pytest.raises(YoloxkitError, match="no loss attached"):
        bare(images, targets)
    assert bare.eval()(images).shape == (2, 84, 8)  # inference needs no criterion


def test_models_build_model_is_a_deprecated_alias_of_build_network_that_warns_once():
    import warnings

    from yoloxkit import deprecation
    from yoloxkit.models import build_network

    deprecation._SHOWN.discard("yoloxkit.models.build_model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = yoloxkit.models.build_model("yolox-nano", num_classes=2)
        yoloxkit.models.build_model("yolox-nano", num_classes=2)
    assert [w.category for w in caught] == [DeprecationWarning]
    assert old.criterion is None  # the network alone, as build_network gives it
    assert old.state_dict().keys() == build_network("yolox-nano", num_classes=2).state_dict().keys()


def test_head_use_l1_and_criterion_use_l1_are_one_flag():
    from yoloxkit.errors import YoloxkitError
    from yoloxkit.losses import YoloxLoss
    from yoloxkit.models import build_network
    from yoloxkit.trainable import attach_loss

    model = yoloxkit.build_model("yolox-nano", num_classes=2)
    assert model.head.use_l1 is False
    model.head.use_l1 = True  # the official switch
    assert model.criterion.use_l1 is True and model.head.use_l1 is True
    model.criterion.use_l1 = False  # the trainer's switch
    assert model.head.use_l1 is False
    with pytest.raises(ValueError):
        model.head.use_l1 = "yes"

    bare = build_network("yolox-nano", num_classes=2)
    bare.head.use_l1 = True  # no criterion yet: kept and handed to the one attached next
    assert bare.head.use_l1 is True
    criterion = attach_loss(bare, YoloxLoss(normalizer="running"))
    assert bare.criterion is criterion and criterion.use_l1 is True and criterion.normalizer == "running"

    other = build_network("yolox-nano", num_classes=2)
    other.criterion = lambda levels, targets, strides: {}
    other.head.use_l1 = False  # nothing to switch off
    with pytest.raises(YoloxkitError, match="no use_l1 switch"):
        other.head.use_l1 = True  # never silently ignored


def test_attach_loss_takes_a_ready_criterion_or_the_old_use_l1_keyword():
    from yoloxkit.losses import YoloxLoss
    from yoloxkit.models import build_network
    from yoloxkit.trainable import attach_loss

    model = build_network("yolox-nano", num_classes=2)
    ready = YoloxLoss(pss_targets="gt", pss_weight=2.0)
    assert attach_loss(model, ready) is ready and model.criterion is ready
    fresh = attach_loss(model, use_l1=True)
    assert fresh is not ready and fresh.use_l1 is True and model.head.use_l1 is True
    assert attach_loss(model).use_l1 is False
