"""Checkpoint reading, model identification, the bundled weights and the download cache."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from yoloxkit.weights import hub
from yoloxkit.coco_names import COCO_NAMES
from yoloxkit.errors import DownloadError, UnknownModelError, WeightsError, WeightsMismatchError
from yoloxkit.models import MODEL_SPECS, build_network
from yoloxkit.weights import (
    build_model_with_weights,
    bundled_demo_image,
    bundled_weights_path,
    describe_weights,
    identify_state_dict,
    load_weights,
    read_checkpoint,
    read_names_file,
    resolve_weights,
    save_checkpoint,
)

UNREACHABLE = "http://127.0.0.1:9/yolox_s.pth"


class _RunsCodeWhenUnpickled:
    """A pickle payload that would call a function on load; weights_only=True must refuse it."""

    def __reduce__(self):
        return (print, ("unpickled code ran",))


def _random_nano(num_classes: int = 80, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_network("yolox-nano", num_classes=num_classes)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------------------ checkpoints


def test_yoloxkit_checkpoint_round_trip(tmp_path):
    model = _random_nano(num_classes=3)
    path = save_checkpoint(tmp_path / "ckpt.pth", model, ["a", "b", "c"], "yolox-nano", epoch=7)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["names"] == ["a", "b", "c"] and raw["model_name"] == "yolox-nano" and raw["epoch"] == 7
    loaded = build_network("yolox-nano", num_classes=3)
    assert load_weights(loaded, path) == ["a", "b", "c"]
    assert _same_state(model, loaded)


def test_official_format_checkpoint_loads_without_names(tmp_path):
    model = _random_nano()
    path = tmp_path / "yolox_nano.pth"
    torch.save({"model": model.state_dict(), "start_epoch": 300}, path)  # the official layout
    loaded = build_network("yolox-nano")
    assert load_weights(loaded, path) is None
    assert _same_state(model, loaded)
    info = describe_weights(path)
    assert (info.format, info.model_name, info.num_classes, info.names) == ("checkpoint", "yolox-nano", 80, None)


def test_identify_state_dict_for_every_zoo_model():
    for name in [n for n, spec in MODEL_SPECS.items() if not spec.roadmap]:
        with torch.device("meta"):
            state = build_network(name, num_classes=7).state_dict()
        assert identify_state_dict(state) == name
    assert identify_state_dict({"foo": torch.zeros(1)}) is None


def test_other_model_size_is_a_mismatch_naming_it(tmp_path):
    path = tmp_path / "s.pth"
    torch.save({"model": build_network("yolox-s").state_dict()}, path)
    with pytest.raises(WeightsMismatchError, match=r"s\.pth .*looks like yolox-s weights; pass --model yolox-s"):
        load_weights(build_network("yolox-nano"), path)


def test_other_class_count_is_a_mismatch_saying_so(tmp_path):
    path = save_checkpoint(tmp_path / "c20.pth", _random_nano(num_classes=20), None, "yolox-nano")
    with pytest.raises(WeightsMismatchError, match="yolox-nano with 20 classes, the model has 80"):
        load_weights(build_network("yolox-nano"), path)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a checkpoint", b"PK\x03\x04truncated zip"],
    ids=["empty", "text", "truncated-zip"],
)
def test_garbled_file_is_a_weights_error(tmp_path, content):
    path = tmp_path / "garbled.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="garbled.pth") as info:
        load_weights(build_network("yolox-nano"), path)
    assert "\n" not in str(info.value)


def test_truncated_real_checkpoint_is_a_weights_error(tmp_path):
    good = save_checkpoint(tmp_path / "good.pth", _random_nano(), list(COCO_NAMES), "yolox-nano")
    bad = tmp_path / "cut.pth"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cut.pth"):
        read_checkpoint(bad)


def test_not_a_checkpoint_and_unsafe_pickles_are_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match="not a YOLOX checkpoint"):
        read_checkpoint(path)

    unsafe = tmp_path / "unsafe.pth"
    with open(unsafe, "wb") as f:
        pickle.dump({"model": _RunsCodeWhenUnpickled()}, f, protocol=2)
    with pytest.raises(WeightsError, match="unsafe.pth"):
        read_checkpoint(unsafe)


def test_missing_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found: .*missing.pth"):
        load_weights(build_network("yolox-nano"), tmp_path / "missing.pth")


def test_build_model_with_weights_uses_stored_name_and_class_count(tmp_path):
    path = save_checkpoint(tmp_path / "c3.pth", _random_nano(num_classes=3), ["x", "y", "z"], "yolox-nano")
    model, names, name = build_model_with_weights(None, path)
    assert (name, names, model.head.num_classes, model.training) == ("yolox-nano", ["x", "y", "z"], 3, False)
    with pytest.raises(WeightsMismatchError, match="looks like yolox-nano"):
        build_model_with_weights("yolox-tiny", path)


# ------------------------------------------------------------------------------------ names files


def test_read_names_file_formats(tmp_path):
    (tmp_path / "n.txt").write_text("cat\n\ndog\n")
    (tmp_path / "n.json").write_text(json.dumps(["cat", "dog"]))
    (tmp_path / "n.yaml").write_text("names:\n  0: cat\n  1: dog\n")
    for suffix in ("txt", "json", "yaml"):
        assert read_names_file(tmp_path / f"n.{suffix}") == ["cat", "dog"]
    (tmp_path / "bad.json").write_text("{broken")
    with pytest.raises(WeightsError, match="bad.json"):
        read_names_file(tmp_path / "bad.json")
    with pytest.raises(WeightsError, match="not found"):
        read_names_file(tmp_path / "none.txt")


# ------------------------------------------------------------------------------------ bundled files


def test_bundled_weights_reproduce_the_onnx_export(nano_onnx, dog_jpg):
    """The shipped checkpoint: weights_only loadable, COCO names, and the ONNX model's outputs."""
    import onnxruntime as ort

    from test_onnx_import import letterboxed, raw_output

    path = bundled_weights_path()
    assert path.is_file() and path.stat().st_size < 8_000_000
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["model_name"] == "yolox-nano" and raw["names"] == list(COCO_NAMES)
    model = build_network("yolox-nano")
    assert load_weights(model, path) == list(COCO_NAMES)
    batch = letterboxed(dog_jpg)
    expected = ort.InferenceSession(str(nano_onnx), providers=["CPUExecutionProvider"]).run(None, {"images": batch})[0]
    assert np.abs(raw_output(model, batch) - expected).max() <= 1e-3
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(int(bn.num_batches_tracked) == 0 for bn in bns)
    assert (torch.cat([bn.running_var for bn in bns]) - 1).abs().median() > 0.05  # calibrated, not identity


def test_bundled_demo_image_is_the_shared_demo(dog_jpg):
    assert bundled_demo_image().read_bytes() == dog_jpg.read_bytes()


# ------------------------------------------------------------------------------------ resolve / download


def test_resolve_explicit_path(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"x")
    assert resolve_weights("yolox-s", path) == path
    assert resolve_weights(None, str(path)) == path
    with pytest.raises(WeightsError, match="not found: .*nothing.pth"):
        resolve_weights("yolox-s", tmp_path / "nothing.pth")


def test_resolve_nano_default_is_bundled():
    assert resolve_weights("yolox-nano") == bundled_weights_path()
    assert resolve_weights("nano") == bundled_weights_path()
    with pytest.raises(UnknownModelError):
        resolve_weights("yolox-huge")


def test_resolve_other_models_download_and_fail_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOXKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(hub, "official_weights_url", lambda name: UNREACHABLE)
    with pytest.raises(DownloadError) as info:
        resolve_weights("yolox-s")
    message = str(info.value)
    assert UNREACHABLE in message and "--weights PATH" in message and "\n" not in message
    cache = tmp_path / "home" / "weights"
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written


def test_official_url_table():
    urls = hub.official_weights_urls()
    assert set(urls) == {n for n, spec in MODEL_SPECS.items() if not spec.roadmap}  # the roadmap rows have none
    prefix = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/"
    assert urls["yolox-s"] == prefix + "yolox_s.pth"
    assert urls["yolox-darknet53"] == prefix + "yolox_darknet.pth"
    assert hub.official_weights_url("yolox_x") == prefix + "yolox_x.pth"


def test_cache_dir_follows_yoloxkit_home(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOXKIT_HOME", str(tmp_path))
    assert hub.weights_cache_dir() == tmp_path / "weights"
    monkeypatch.delenv("YOLOXKIT_HOME")
    assert hub.weights_cache_dir().parts[-3:] == (".cache", "yoloxkit", "weights")


def test_download_caches_atomically(tmp_path):
    """A local file:// URL stands in for the release server (no network in tests)."""
    source = tmp_path / "server" / "yolox_s.pth"
    source.parent.mkdir()
    source.write_bytes(b"weights" * 1000)
    cache = tmp_path / "cache"
    path = hub.download_official("yolox-s", cache_dir=cache, url=source.as_uri())
    assert path == cache / "yolox_s.pth" and path.read_bytes() == source.read_bytes()
    assert [p.name for p in cache.iterdir()] == ["yolox_s.pth"]  # no temp file left behind
    source.unlink()  # a second call is served from the cache
    assert hub.download_official("yolox-s", cache_dir=cache, url=source.as_uri()) == path


def test_download_error_names_the_url(tmp_path):
    with pytest.raises(DownloadError, match=r"http://127\.0\.0\.1:9/x\.pth.*--weights PATH"):
        hub.download_url("http://127.0.0.1:9/x.pth", tmp_path / "x.pth", progress=False)
    assert not any(tmp_path.iterdir())
