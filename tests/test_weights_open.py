"""open_weights: a path or a zoo name resolved once into a WeightsFile that knows its format,
model, names and size, reads the file once, and loads into or builds a model."""

from __future__ import annotations

import pytest
import torch

import yoloxkit
from yoloxkit.coco_names import COCO_NAMES
from yoloxkit.errors import WeightsError, WeightsMismatchError
from yoloxkit.weights import WeightsFile, bundled_weights_path, load_weights, open_weights, save_checkpoint
from yoloxkit.weights import contents as contents_module


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_zoo_name_opens_the_bundled_checkpoint():
    opened = open_weights("yolox-nano")
    assert opened.path == bundled_weights_path() and opened.source.kind == "bundled"
    assert opened.format.name == "checkpoint" and opened.format.backend == "torch"
    assert opened.model_name == "yolox-nano" and opened.names == list(COCO_NAMES)
    assert opened.input_size is None
    assert open_weights(None, "nano").path == bundled_weights_path()


def test_build_and_load_into_agree_with_load_weights():
    loaded = open_weights(None, "yolox-nano").build()
    assert loaded.model_name == "yolox-nano" and not loaded.model.training
    reference = yoloxkit.build_model("yolox-nano")
    assert load_weights(reference, bundled_weights_path()) == loaded.names
    assert _same(loaded.model, reference)
    state, names = open_weights("yolox-nano").state_dict()
    assert names == list(COCO_NAMES) and state.keys() == reference.state_dict().keys()


def test_the_file_is_read_once(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pth", yoloxkit.build_model("yolox-nano", num_classes=2), ["a", "b"],
                           "yolox-nano")
    reads = []
    original = contents_module.read_checkpoint
    monkeypatch.setattr(contents_module, "read_checkpoint", lambda p: reads.append(p) or original(p))
    opened = open_weights(path)
    assert opened.model_name == "yolox-nano" and opened.names == ["a", "b"]
    loaded = opened.build()
    assert loaded.model.head.num_classes == 2 and loaded.names == ["a", "b"]
    assert len(reads) == 1


def test_the_requested_model_wins_and_must_fit(tmp_path):
    path = save_checkpoint(tmp_path / "m.pth", yoloxkit.build_model("yolox-nano"), None, None)
    assert open_weights(path, "nano").model_name == "yolox-nano"
    with pytest.raises(WeightsMismatchError):
        open_weights(path, "yolox-tiny").build()
    with pytest.raises(WeightsMismatchError, match="name different zoo models"):
        open_weights("yolox-nano", "yolox-s")


def test_runtime_exports_are_refused_before_reading(tmp_path):
    opened = WeightsFile.at(tmp_path / "missing.xml")
    assert opened.format.name == "openvino" and opened.format.runs_as_is
    with pytest.raises(WeightsError, match="is an OpenVINO IR: it runs in predict"):
        opened.load_into(yoloxkit.build_model("yolox-nano"))
    with pytest.raises(WeightsError, match="weights file not found"):
        opened.describe()


def test_load_state_is_a_deprecated_alias_of_open_weights_state_dict():
    import warnings

    import torch

    from yoloxkit import deprecation
    from yoloxkit.weights import load_state, open_weights

    deprecation._SHOWN.discard("yoloxkit.weights.load_state")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state, names = load_state("yolox-nano")
        load_state("yolox-nano")
    assert sum(issubclass(w.category, DeprecationWarning) and "load_state" in str(w.message) for w in caught) == 1
    expected, expected_names = open_weights("yolox-nano").state_dict()
    assert names == expected_names and len(names) == 80
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in state)
