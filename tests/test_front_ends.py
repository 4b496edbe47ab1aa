"""The thin front ends: one place for the inference defaults, the service's settings object and
its slice-options dependency, the one ``build_detector``, and ``infer.run.predict_sources``."""

from __future__ import annotations

import inspect

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve_support import FakeDetector, encode, sample_image
from yoloxkit.cli import build_parser
from yoloxkit.cli.detector_options import SLICE_BATCH, detector_keywords
from yoloxkit.errors import InferenceError
from yoloxkit.imaging import IMAGE_SUFFIXES, WRITE_SUFFIXES, output_suffix
from yoloxkit.infer import Detector
from yoloxkit.infer.defaults import DEFAULT_CONF, DEFAULT_MAX_DETS, DEFAULT_NMS
from yoloxkit.infer.postprocess import postprocess
from yoloxkit.infer.run import OutputNames, predict_sources
from yoloxkit.infer.sources import expand_sources
from yoloxkit.infer.topk import topk_postprocess
from yoloxkit.serve.app import create_app
from yoloxkit.serve.routes.detect import SliceOptions, slice_options
from yoloxkit.serve.settings import ServiceSettings


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def test_the_defaults_come_from_infer_defaults():
    assert (DEFAULT_CONF, DEFAULT_NMS, DEFAULT_MAX_DETS) == (0.25, 0.45, 100)
    assert _default(Detector, "conf") == _default(Detector.from_model, "conf") == DEFAULT_CONF
    assert _default(postprocess, "conf") == _default(topk_postprocess, "conf") == DEFAULT_CONF
    assert _default(postprocess, "nms") == DEFAULT_NMS
    predict = build_parser().parse_args(["predict", "x.jpg"])
    serve = build_parser().parse_args(["serve"])
    assert predict.conf == serve.conf == DEFAULT_CONF and predict.max_dets == DEFAULT_MAX_DETS


def test_service_settings_check_thresholds_as_the_detector_does():
    with pytest.raises(InferenceError, match="conf must be between 0 and 1"):
        ServiceSettings(conf=1.5)
    with pytest.raises(ValueError, match="max_tiles"):
        ServiceSettings(max_tiles=0)
    fake = FakeDetector()
    assert ServiceSettings().for_detector(fake).conf == DEFAULT_CONF  # a detector without conf/nms
    fake.conf, fake.nms = 0.4, 0.6
    resolved = ServiceSettings(nms=0.5).for_detector(fake)
    assert (resolved.conf, resolved.nms) == (0.4, 0.5)


def test_create_app_takes_a_settings_object_or_its_fields():
    fake = FakeDetector()
    with TestClient(create_app(fake, settings=ServiceSettings(conf=0.6, max_batch=3))) as client:
        info = client.get("/v1/model").json()
    assert info["conf"] == 0.6 and info["nms"] == DEFAULT_NMS and info["max_batch"] == 3
    with pytest.raises(TypeError, match="not both"):
        create_app(fake, settings=ServiceSettings(), conf=0.5)


def test_slice_options_dependency_reads_query_or_form():
    assert slice_options("64", None, None, None, 0.3, True) == SliceOptions("64", 0.3, True)
    assert slice_options("64", None, None, "64", None, None) == SliceOptions("64", None, None)
    with TestClient(create_app(FakeDetector(), max_wait_ms=0.0)) as client:
        image = encode(sample_image(64, 48))
        clash = client.post("/v1/detect", params={"slice": "32"}, data={"slice": "40"},
                            files={"file": ("a.png", image)})
    assert clash.status_code == 422 and "the query parameter ('32') and the form field ('40') differ" in clash.text


def test_one_build_detector_for_every_command():
    predict = detector_keywords(build_parser().parse_args(["predict", "x.jpg", "--slice", "64"]))
    assert predict["batch_size"] == SLICE_BATCH and predict["device"] == "cpu" and predict["slice_overlap"] == 0.2
    serve = detector_keywords(build_parser().parse_args(["serve", "--nms", "0.5"]))
    assert serve == {"conf": DEFAULT_CONF, "nms": 0.5}  # the Detector's own batch size and device


def test_output_suffix_keeps_colour_formats_only():
    assert WRITE_SUFFIXES <= IMAGE_SUFFIXES
    assert output_suffix("a/B.PNG") == ".png" and output_suffix("x.pgm") == ".jpg" and output_suffix("x") == ".jpg"
    names = OutputNames("out")
    assert [names("a.jpg", ".jpg").name, names("b/a.jpg", ".jpg").name] == ["a.jpg", "a_1.jpg"]


def test_predict_sources_records_and_unreadable(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((48, 64, 3), 127, np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    detector = Detector(size=64)
    sources = expand_sources([str(tmp_path)])
    run = predict_sources(detector, sources, save_dir=tmp_path / "out", progress=False)
    assert [r.get("image") for r in run.records] == ["a.png", "b.jpg"] and "error" in run.records[1]
    assert run.failed == ["b.jpg"] and run.stopped is None and not run.interrupted
    assert (tmp_path / "out" / "a.png").is_file()
    assert "a.png: " in capsys.readouterr().out
    strict = predict_sources(detector, sources[::-1], progress=False, strict=True)
    assert strict.stopped is not None and len(strict.records) == 1
