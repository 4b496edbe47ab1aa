"""ONNX export: official interface, dynamic shapes, in-graph decode and NMS, round trip, bad input."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from yoloxkit import build_model
from yoloxkit.errors import ExportError
from yoloxkit.export import ExportOptions, export_model
from yoloxkit.export.graph import export_module
from yoloxkit.export.nms_graph import DetectionsGraph, _rank_within_group
from yoloxkit.export.verify import sample_input
from yoloxkit.infer.postprocess import postprocess

from tests.parity.reference import randomize

SIZE = (160, 192)


@pytest.fixture(scope="module")
def nano() -> torch.nn.Module:
    model = build_model("yolox-nano")
    randomize(model, seed=3)
    return model.eval()


@pytest.fixture(scope="module")
def default_export(nano, tmp_path_factory):
    return export_model(nano, "onnx", tmp_path_factory.mktemp("onnx") / "nano.onnx", ExportOptions(size=SIZE))


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_default_export_is_the_official_interface(nano, default_export):
    result = default_export
    assert result.max_abs_diff < 1e-3
    proto = onnx.load(str(result.path))
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [o.name for o in proto.graph.output] == ["output"]
    assert {o.domain: o.version for o in proto.opset_import}.get("", 0) == 11
    anchors = sum((SIZE[0] // s) * (SIZE[1] // s) for s in (8, 16, 32))
    images = sample_input(SIZE, 1)
    (out,) = _session(result.path).run(None, {"images": images.numpy()})
    assert out.shape == (1, anchors, 85)
    model = export_module(nano, ExportOptions(size=SIZE))  # undecoded, as the official export
    with torch.no_grad():
        expected = model(images).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-3, rtol=1e-3)
    # Undecoded: raw regression offsets, not input pixels.
    assert np.abs(out[..., :2]).max() < 5


def test_dynamic_decoded_export_takes_other_batches_and_sizes(nano, tmp_path):
    options = ExportOptions(size=SIZE, dynamic=True, decode=True)
    result = export_model(nano, "onnx", tmp_path / "dyn.onnx", options)
    images = sample_input((224, 128), 3)
    (out,) = _session(result.path).run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = nano(images).numpy()  # eval forward decodes
    assert out.shape == expected.shape == (3, 28 * 16 + 14 * 8 + 7 * 4, 85)
    np.testing.assert_allclose(out, expected, atol=2e-3, rtol=1e-4)


def test_nms_graph_matches_detector_postprocessing(nano):
    """The eager twin of the --nms graph keeps exactly what infer.postprocess keeps."""
    images = sample_input(SIZE, 3)
    graph = DetectionsGraph(nano, conf=0.3, nms_iou=0.45, max_dets=300).eval()
    with torch.no_grad():
        num_dets, boxes, scores, class_ids = graph(images)
        expected = postprocess(nano(images), [1.0] * 3, [(10**4, 10**4)] * 3, conf=0.3, nms=0.45)
    assert num_dets.shape == (3, 1) and boxes.shape == (3, 300, 4) and class_ids.dtype == torch.int64
    for b, (e_boxes, e_scores, e_ids) in enumerate(expected):
        n = int(num_dets[b, 0])
        assert 0 < n == len(e_scores)
        g_boxes, g_scores, g_ids = boxes[b, :n].clamp(0, 10**4).numpy(), scores[b, :n].numpy(), class_ids[b, :n].numpy()
        want = np.lexsort((*e_boxes.T[::-1], e_ids))
        got = np.lexsort((*g_boxes.T[::-1], g_ids))
        np.testing.assert_allclose(g_boxes[got], e_boxes[want], atol=1e-4)
        np.testing.assert_allclose(g_scores[got], e_scores[want], atol=1e-6)
        np.testing.assert_array_equal(g_ids[got], e_ids[want])
        assert torch.all(boxes[b, n:] == 0) and torch.all(scores[b, n:] == 0) and torch.all(class_ids[b, n:] == 0)
        assert torch.all(scores[b, 1:n] <= scores[b, : n - 1])  # sorted by score


def test_nms_export_runs_in_onnxruntime_with_dynamic_batch(nano, tmp_path):
    options = ExportOptions(size=SIZE, dynamic=True, nms=True, conf=0.3, max_dets=50)
    result = export_model(nano, "onnx", tmp_path / "nms.onnx", options)
    assert result.output_names == ("num_dets", "boxes", "scores", "class_ids")
    session = _session(result.path)
    assert "NonMaxSuppression" in {n.op_type for n in onnx.load(str(result.path)).graph.node}
    images = sample_input(SIZE, 3)
    num_dets, boxes, scores, class_ids = session.run(None, {"images": images.numpy()})
    assert num_dets.shape == (3, 1) and boxes.shape == (3, 50, 4) and class_ids.dtype == np.int64
    with torch.no_grad():
        expected = DetectionsGraph(nano, conf=0.3, max_dets=50)(images)
    np.testing.assert_array_equal(num_dets, expected[0].numpy())
    assert (num_dets > 0).all()
    for b in range(3):
        n = int(num_dets[b, 0])
        np.testing.assert_allclose(np.sort(scores[b, :n]), np.sort(expected[2][b, :n].numpy()), atol=1e-5)
        assert set(class_ids[b, :n].tolist()) == set(expected[3][b, :n].tolist())


def test_rank_within_group():
    groups = torch.tensor([0, 0, 0, 2, 2, 3])
    assert _rank_within_group(groups, 4).tolist() == [0, 1, 2, 0, 1, 0]


def test_exported_onnx_imports_back_into_pytorch(nano, default_export):
    import yoloxkit

    result = default_export
    model = build_model("yolox-nano").eval()
    calibration = [img.transpose(1, 2, 0).astype(np.uint8) for img in sample_input(SIZE, 2).numpy()]
    yoloxkit.load_weights(model, result.path, calib_images=calibration)
    images = sample_input(SIZE, 2)
    with torch.no_grad():
        expected, actual = nano(images), model.eval()(images)
    scale = expected.abs().amax(dim=(0, 1))
    assert torch.all((expected - actual).abs().amax(dim=(0, 1)) <= 1e-3 * scale + 1e-3)


def test_opset_too_old_and_unknown_format_are_rejected(nano, tmp_path):
    with pytest.raises(ExportError, match="minimum is 11"):
        export_model(nano, "onnx", tmp_path / "a.onnx", ExportOptions(size=SIZE, opset=9))
    with pytest.raises(ExportError, match="unsupported export format 'coreml'.*onnx, torchscript, openvino, ncnn"):
        export_model(nano, "coreml", tmp_path / "a.mlmodel", ExportOptions(size=SIZE))
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_leaves_nothing_behind(nano, tmp_path, monkeypatch):
    from yoloxkit.export import onnx as onnx_export

    def fake_write(module, images, path, options):
        path.write_bytes(b"half-verified graph")
        assert path.parent == tmp_path and path.name != "bad.onnx"  # written beside, under a temp name

    def broken(*args, **kwargs):
        raise ExportError("the export does not reproduce PyTorch in onnxruntime: max abs diff 1")

    monkeypatch.setattr(onnx_export, "write_onnx", fake_write)
    monkeypatch.setattr(onnx_export, "run_onnxruntime", lambda path, images: [])
    monkeypatch.setattr(onnx_export, "check_close", broken)
    with pytest.raises(ExportError):
        export_model(nano, "onnx", tmp_path / "bad.onnx", ExportOptions(size=SIZE))
    assert list(tmp_path.iterdir()) == []


def test_verification_counts_a_one_sided_nan_or_inf_and_ignores_equal_ones():
    from yoloxkit.export.verify import max_abs_diff

    inf, nan = float("inf"), float("nan")
    assert max_abs_diff([np.array([1.0, inf, -inf, nan])], [np.array([1.0, inf, -inf, nan])]) == 0.0
    assert max_abs_diff([np.array([1.0, 2.0])], [np.array([1.0, nan])]) == inf  # was 0: NaN hid the mismatch
    assert max_abs_diff([np.array([1.0, inf])], [np.array([1.0, 2.0])]) == inf
    assert max_abs_diff([np.array([1.0, 2.0])], [np.array([1.25, 2.0])]) == 0.25
