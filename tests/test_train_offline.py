"""Starting weights chosen by name, and the one-line failure offline (issue 10)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.train_subset import make_subset
from yoloxkit.engine.builder import preflight
from yoloxkit.engine.config import TrainConfig
from yoloxkit.packaged import bundled_weights_path


def test_preflight_resolves_zoo_names_scratch_and_the_default(coco_mini, tmp_path):
    data = str(make_subset(coco_mini, tmp_path / "data", 2))
    assert preflight(TrainConfig(data=data, model="yolox-nano")).kind == "bundled"
    named = preflight(TrainConfig(data=data, model="yolox-nano", weights="yolox-nano"))
    assert named.path == bundled_weights_path() and "bundled yolox-nano COCO weights" in named.describe()
    assert preflight(TrainConfig(data=data, model="yolox-nano", weights="none")) is None
    assert preflight(TrainConfig(data=data, model="yolox-nano", weights="None")) is None


def test_train_offline_fails_at_once_with_one_line(coco_mini, tmp_path):
    env = {**os.environ, "YOLOXKIT_HOME": str(tmp_path / "home"), "https_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9"}
    command = [sys.executable, "-m", "yoloxkit", "train", "--data", str(coco_mini), "--model", "yolox-s",
               "--out", str(tmp_path / "out")]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    lines = done.stderr.strip().splitlines()
    print(f"offline train failed in {seconds:.1f} s: {lines}")
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "yolox_s.pth" in lines[0] and "--weights PATH" in lines[0] and "--weights none" in lines[0]
    assert not (tmp_path / "out").exists()  # nothing was started
    assert seconds < 30  # ~2.5 s on a loaded 2-core machine; the limit only catches a hang
