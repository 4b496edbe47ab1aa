"""Schema-driven fuzz of the served OpenAPI (schemathesis): no 500, no crash, responses as documented."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from serve_support import FAKE_NAMES, FakeDetector, encode, sample_image
from yoloxkit.serve.app import create_app
from yoloxkit.serve.limits import UploadLimits

APP = create_app(FakeDetector(), max_wait_ms=0.0, limits=UploadLimits(max_upload_bytes=100_000, max_pixels=250_000))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEEN: Counter = Counter()
VALID_PNG = encode(sample_image(32, 24))


OPERATIONS = [result.ok() for result in schema.get_all_operations()]


# One test per operation with its own id (schema.parametrize() gives every operation the same
# node id, which pytest-xdist collapses into one).
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_fuzz_api(operation):
    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call_and_validate(checks=CHECKS)
        SEEN[(case.method.upper(), case.path, response.status_code)] += 1

    fuzz()


def test_fuzz_reached_every_route_and_server_stays_healthy():
    statuses = {key[2] for key in SEEN}
    assert SEEN, "the fuzz test did not run"
    assert not any(status >= 500 for status in statuses), SEEN
    assert {path for _, path, _ in SEEN} == {"/v1/detect", "/v1/model", "/healthz"}
    detect_statuses = {status for _, path, status in SEEN if path == "/v1/detect"}
    assert len(detect_statuses) >= 2 and 503 not in detect_statuses, detect_statuses  # real rejections, not shutdown
    with TestClient(APP) as client:
        assert client.get("/healthz").json()["status"] == "ok"


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(
    conf=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8)),
    nms=st.one_of(st.none(), st.floats(min_value=-1, max_value=2)),
    classes=st.one_of(st.none(), st.text(max_size=30),
                      st.lists(st.sampled_from(FAKE_NAMES + ["Dog", " ", "cat"]), max_size=4).map(",".join)),
)
def test_fuzz_options_with_a_valid_image(conf, nms, classes):
    params = {k: v for k, v in {"conf": conf, "nms": nms, "classes": classes}.items() if v is not None}
    with TestClient(APP) as client:
        response = client.post("/v1/detect", params=params, files={"file": ("a.png", VALID_PNG)})
        assert response.status_code in (200, 422), response.text
        body = response.json()
        if response.status_code == 200:
            threshold = 0.25 if conf is None else float(conf)
            assert all(d["score"] >= threshold for d in body["detections"])
            if classes is not None and classes.strip(" ,"):
                wanted = {c.strip().casefold() for c in classes.split(",") if c.strip()}
                assert {d["name"].casefold() for d in body["detections"]} <= wanted
        else:
            assert body["detail"]
