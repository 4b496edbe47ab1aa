"""The networks of the paper's roadmap (Table 2): exact sizes, the anchor-based heads' output
groups and box decoding, the coupled head's layout, and the anchor-free heads left unchanged."""

import math

import pytest
import torch
from torch import nn

import yoloxkit
from yoloxkit.models import (
    MODEL_SPECS, PAPER_TABLE2, ROADMAP_ROWS, YOLOV3_ANCHORS, CoupledHead, DecoupledHead, build_network, get_spec,
)
from yoloxkit.models.anchors import group_anchor_sizes, group_strides, size_priors, split_anchor_channels
from yoloxkit.models.head import decode_outputs
from yoloxkit.models.info import count_gflops, count_macs, count_parameters

# Table 2's rows up to "+SimOTA" (the NMS-free row's figures: tests/test_e2e_model.py)
EXACT_ROWS = [row for row in PAPER_TABLE2.values() if not row.model.endswith("-e2e")]
PARAMS = {
    "yolox-roadmap-baseline": 62_998_749,
    "yolox-roadmap-decoupled": 63_855_837,
    "yolox-roadmap-strongaug": 63_855_837,
    "yolox-roadmap-anchorfree": 63_724_767,
    "yolox-roadmap-multipos": 63_724_767,
    "yolox-darknet53": 63_724_767,
}


@pytest.fixture(scope="module")
def sizes():
    """(params, GFLOPs at 640) of every row, each darknet model built once."""
    figures = {}
    for row in EXACT_ROWS:
        model = build_network(row.model)
        figures[row.model] = (count_parameters(model), count_gflops(model, 640))
    return figures


@pytest.mark.parametrize("row", EXACT_ROWS, ids=lambda row: row.model)
def test_params_and_gflops_equal_table_2_to_the_printed_digits(sizes, row):
    params, gflops = sizes[row.model]
    assert params == PARAMS[row.model] == MODEL_SPECS[row.model].params
    assert f"{params / 1e6:.2f}" == f"{row.params_m:.2f}"
    assert round(gflops, 1) == row.gflops == MODEL_SPECS[row.model].gflops


def test_head_parameter_counts_by_hand(sizes):
    backbone = count_parameters(build_network("yolox-darknet53").backbone)
    # coupled: per level a 3x3 conv c -> 2c with BatchNorm, and a 1x1 conv 2c -> 3*(5+80) with bias
    coupled = sum(c * 2 * c * 9 + 2 * 2 * c + (2 * c + 1) * 3 * 85 for c in (128, 256, 512))
    assert sizes["yolox-roadmap-baseline"][0] == backbone + coupled
    # decoupled with 3 anchors: the anchor-free head's prediction convs (hidden 256) grow from
    # 80 + 4 + 1 to 3 * (80 + 4 + 1) outputs on each of the three levels
    assert sizes["yolox-roadmap-decoupled"][0] - sizes["yolox-darknet53"][0] == 3 * 2 * 85 * 257


def test_roadmap_rows_in_the_zoo():
    assert ROADMAP_ROWS == (
        "yolox-roadmap-baseline", "yolox-roadmap-decoupled", "yolox-roadmap-strongaug", "yolox-roadmap-anchorfree",
        "yolox-roadmap-multipos", "yolox-darknet53", "yolox-darknet53-e2e",
    )
    assert [row.row for row in PAPER_TABLE2.values()][::6] == ["YOLOv3 baseline", "+NMS free"]
    assert all(name == row.model for name, row in PAPER_TABLE2.items())
    specs = [get_spec(name) for name in ROADMAP_ROWS]
    assert [s.head for s in specs] == ["coupled"] + ["decoupled"] * 6
    assert [s.anchors is not None for s in specs] == [True, True, True, False, False, False, False]
    assert [s.assigner for s in specs] == ["yolov3", "yolov3", "yolov3", "centre", "centre3x3", "simota", "simota"]
    assert [s.roadmap for s in specs] == [True] * 5 + [False] * 2
    assert all(s.darknet and s.act == "lrelu" and s.input_size == 640 for s in specs)
    assert all(not s.weights_url and s.coco_ap == 0.0 for s in specs[:5])
    assert specs[0].anchors == YOLOV3_ANCHORS
    assert get_spec("roadmap_baseline").name == "yolox-roadmap-baseline"
    with pytest.raises(yoloxkit.UnknownModelError):
        get_spec("yolox-roadmap-baseline-e2e")
    with pytest.raises(ValueError, match="no end-to-end variant"):
        build_network("yolox-roadmap-anchorfree", end_to_end=True)
    with pytest.raises(ValueError, match="anchor-free"):
        DecoupledHead(2, 0.25, anchors=YOLOV3_ANCHORS, end_to_end=True)


def test_count_macs_counts_leaky_relu_as_thop_does():
    # 3 -> 2 channels, 1x1, no bias, on 4x4: 32 outputs of 3 MACs; LeakyReLU adds one per output
    def net(act: nn.Module) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), act)

    assert count_macs(net(nn.LeakyReLU(0.1)), (4, 4)) == 96 + 32
    assert count_macs(net(nn.SiLU()), (4, 4)) == count_macs(net(nn.ReLU()), (4, 4)) == 96


def test_eval_output_of_anchor_heads_at_64_px():
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    for name in ("yolox-roadmap-baseline", "yolox-roadmap-decoupled"):
        model = build_network(name, num_classes=3).eval()
        with torch.no_grad():
            decoded = model(images)
            model.head.decode_in_inference = False
            raw = model(images)
        assert decoded.shape == raw.shape == (2, 3 * (8 * 8 + 4 * 4 + 2 * 2), 8)
        assert torch.equal(decoded[..., 4:], raw[..., 4:])
        shapes = [(64 // s, 64 // s) for s in model.head.strides]
        assert torch.equal(decoded, decode_outputs(raw, shapes, model.head.strides, model.head.anchor_sizes))


def test_group_order_strides_and_anchor_sizes():
    head = DecoupledHead(2, 0.25, anchors=YOLOV3_ANCHORS)
    assert head.level_strides == (8, 16, 32)
    assert head.strides == (8, 8, 8, 16, 16, 16, 32, 32, 32)
    assert head.anchor_sizes == ((10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119),
                                 (116, 90), (156, 198), (373, 326))
    assert [c.out_channels for c in head.cls_preds] == [6] * 3 and [c.out_channels for c in head.reg_preds] == [12] * 3
    captured = {}
    head.reg_preds[1].register_forward_hook(lambda m, i, out: captured.setdefault("reg", out))
    head.cls_preds[1].register_forward_hook(lambda m, i, out: captured.setdefault("cls", out))
    features = [torch.randn(1, int(c * 0.25), 64 // s, 64 // s) for c, s in zip((256, 512, 1024), (8, 16, 32))]
    groups = head.forward_levels(features)
    assert [tuple(r.shape[-2:]) for r, _, _ in groups] == [(8, 8)] * 3 + [(4, 4)] * 3 + [(2, 2)] * 3
    assert all(r.shape[1] == 4 and o.shape[1] == 1 and c.shape[1] == 2 for r, o, c in groups)
    # group 5 = level 1, anchor 2: channels 8..11 of that level's regression, 4..5 of its classes
    assert torch.equal(groups[5][0], captured["reg"][:, 8:12])
    assert torch.equal(groups[5][2], captured["cls"][:, 4:6])
    anchor_free = DecoupledHead(2, 0.25)
    assert anchor_free.strides == anchor_free.level_strides == (8, 16, 32) and anchor_free.anchor_sizes is None


def _constant_coupled_head() -> CoupledHead:
    """A small coupled head (2 classes) whose outputs are its prediction biases alone."""
    head = CoupledHead(2, in_channels=(4, 8, 16)).eval()
    with torch.no_grad():
        for conv in head.preds:
            conv.weight.zero_()
        # level 1, anchor 2: reg (0.5, -0.25, log 2, 0), obj logit 3, class logits (-1, 2)
        head.preds[1].bias[2 * 7: 3 * 7] = torch.tensor([0.5, -0.25, math.log(2.0), 0.0, 3.0, -1.0, 2.0])
    return head


def test_coupled_head_layout_decodes_a_hand_set_bias():
    head = _constant_coupled_head()
    features = [torch.randn(1, c, 64 // s, 64 // s) for c, s in zip((4, 8, 16), (8, 16, 32))]
    with torch.no_grad():
        out = head(features)
    assert out.shape == (1, 3 * (64 + 16 + 4), 7)
    # group 5 (stride 16, anchor (59, 119)) starts after 3 groups of 8x8 and 2 of 4x4; its cell
    # x=1, y=2 is row-major index 9
    row = out[0, 3 * 64 + 2 * 16 + 9]
    expected = [(0.5 + 1) * 16, (-0.25 + 2) * 16, 2 * 59, 119, torch.sigmoid(torch.tensor(3.0)).item(),
                torch.sigmoid(torch.tensor(-1.0)).item(), torch.sigmoid(torch.tensor(2.0)).item()]
    assert row.tolist() == pytest.approx(expected, rel=1e-6)
    # every other group keeps its initial biases: reg 0 (the anchor's box on the cell corner), prior 0.01
    first = out[0, 0]  # group 0 (stride 8, anchor (10, 13)), cell 0
    assert first.tolist() == pytest.approx([0, 0, 10, 13, 0.01, 0.01, 0.01], rel=1e-5, abs=1e-6)
    last = out[0, -1]  # group 8 (stride 32, anchor (373, 326)), cell x=1, y=1
    assert last[:4].tolist() == pytest.approx([32, 32, 373, 326])


def test_coupled_head_channels_per_anchor_are_reg_obj_cls():
    head = CoupledHead(3, in_channels=(4, 8, 16))
    assert [c.out_channels for c in head.preds] == [3 * 8] * 3
    assert [conv.conv.out_channels for conv in head.convs] == [8, 16, 32]
    bias = head.preds[0].bias.view(3, 8)
    assert torch.equal(bias[:, :4], torch.zeros(3, 4))
    assert torch.sigmoid(bias[:, 4:]).detach() == pytest.approx(torch.full((3, 4), 0.01), rel=1e-4)
    with torch.no_grad():
        for conv in head.preds:
            conv.weight.zero_()
            conv.bias.copy_(torch.arange(24.0))
    groups = head.forward_levels([torch.zeros(1, c, 2, 2) for c in (4, 8, 16)])
    assert len(groups) == 9
    for g, (reg, obj, cls) in enumerate(groups):
        a = g % 3  # channels of anchor a: 8a..8a+3 reg, 8a+4 obj, 8a+5..8a+7 cls
        assert reg[0, :, 0, 0].tolist() == [8 * a + i for i in range(4)]
        assert obj[0, :, 0, 0].tolist() == [8 * a + 4]
        assert cls[0, :, 0, 0].tolist() == [8 * a + 5, 8 * a + 6, 8 * a + 7]
    assert set(head.state_dict()) == {f"{p}.{k}.{n}" for k in range(3) for p, n in
                                      [("convs", "conv.weight"), ("convs", "bn.weight"), ("convs", "bn.bias"),
                                       ("convs", "bn.running_mean"), ("convs", "bn.running_var"),
                                       ("convs", "bn.num_batches_tracked"), ("preds", "weight"), ("preds", "bias")]}


def test_decode_outputs_with_anchor_sizes_by_hand():
    # two groups: 1x2 cells at stride 8 with anchor (10, 13), 1x1 cell at stride 16 with anchor (30, 61)
    raw = torch.tensor([[[0.5, 0.5, 0.0, 0.0, 0.9],
                         [0.0, 0.0, math.log(2.0), math.log(0.5), 0.8],
                         [-0.5, 1.0, 0.0, math.log(3.0), 0.7]]])
    decoded = decode_outputs(raw, [(1, 2), (1, 1)], (8, 16), anchor_sizes=((10, 13), (30, 61)))
    expected = [[4, 4, 10, 13, 0.9], [8, 0, 20, 6.5, 0.8], [-8, 16, 30, 183, 0.7]]
    assert torch.allclose(decoded[0], torch.tensor(expected), rtol=1e-6, atol=1e-6)
    # without anchor sizes the stride is the size prior (the anchor-free coding, unchanged)
    assert decode_outputs(raw, [(1, 2), (1, 1)], (8, 16))[0, 1, 2:4].tolist() == pytest.approx([16, 4])


def test_decode_and_size_priors_against_a_loop():
    shapes, strides = [(3, 2), (2, 1), (1, 1)], (8, 8, 16)
    anchors = ((10.0, 13.0), (16.0, 30.0), (62.0, 45.0))
    raw = torch.randn(2, 6 + 2 + 1, 6, generator=torch.Generator().manual_seed(3))
    decoded = decode_outputs(raw, shapes, strides, anchor_sizes=anchors)
    priors = size_priors(shapes, strides, anchors)
    i = 0
    for (h, w), stride, (aw, ah) in zip(shapes, strides, anchors):
        for y in range(h):
            for x in range(w):
                assert priors[i].tolist() == [aw, ah]
                for b in range(2):
                    dx, dy, lw, lh = raw[b, i, :4].tolist()
                    want = [(dx + x) * stride, (dy + y) * stride, math.exp(lw) * aw, math.exp(lh) * ah]
                    assert decoded[b, i, :4].tolist() == pytest.approx(want, rel=1e-5, abs=1e-5)
                i += 1
    assert torch.equal(decoded[..., 4:], raw[..., 4:])
    assert size_priors(shapes, strides).tolist() == [[8, 8]] * 8 + [[16, 16]]


def test_anchor_helpers():
    assert group_strides((8, 16), (((1, 1),), ((2, 2), (3, 3)))) == (8, 16, 16)
    assert group_strides((8, 16, 32)) == (8, 16, 32) and group_anchor_sizes(None) is None
    x = torch.arange(12.0).reshape(1, 12, 1, 1)
    parts = split_anchor_channels(x, 3)
    assert [p.flatten().tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(ValueError, match="one non-empty tuple"):
        DecoupledHead(2, 0.25, anchors=YOLOV3_ANCHORS[:2])
    with pytest.raises(ValueError, match="positive"):
        CoupledHead(2, in_channels=(4, 8, 16), anchors=(((0, 1),), ((1, 1),), ((1, 1),)))


def test_the_model_hands_anchor_sizes_to_its_criterion_only_when_anchor_based():
    calls = []

    def criterion(levels, targets, strides, *args, **kwargs):
        calls.append((len(levels), strides, args, kwargs))
        return {}

    images, targets = torch.rand(1, 3, 64, 64) * 255, torch.zeros(1, 2, 5)
    for name in ("yolox-roadmap-baseline", "yolox-nano"):
        model = build_network(name, num_classes=2).train()
        model.criterion = criterion
        model(images, targets)
    assert calls[0] == (9, (8, 8, 8, 16, 16, 16, 32, 32, 32), (), {"anchor_sizes": group_anchor_sizes(YOLOV3_ANCHORS)})
    assert calls[1] == (3, (8, 16, 32), (), {})


def test_anchor_free_heads_are_unchanged():
    model = build_network("yolox-nano", num_classes=3).eval()
    head = model.head
    assert head.anchor_sizes is None and head.strides == head.level_strides == (8, 16, 32)
    images = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        decoded = model(images)
        head.decode_in_inference = False
        raw = model(images)
    shapes = [(8, 12), (4, 6), (2, 3)]
    assert torch.equal(decoded, decode_outputs(raw, shapes, (8, 16, 32)))
    assert torch.equal(decoded, decode_outputs(raw, shapes, (8, 16, 32), anchor_sizes=None))
    assert torch.allclose(decoded, decode_outputs(raw, shapes, (8, 16, 32), ((8, 8), (16, 16), (32, 32))))


def test_anchor_free_nano_keys_and_outputs_equal_the_reference():
    from tests.parity.reference import build_reference, randomize

    ours, ref = build_network("yolox-nano", num_classes=3).eval(), build_reference("yolox-nano", num_classes=3).eval()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    ours.load_state_dict(randomize(ref, seed=5))
    images = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2)) * 255
    with torch.no_grad():
        assert torch.allclose(ours(images), ref(images), rtol=1e-4, atol=1e-3)
