"""The edge runtimes install nothing and reach no network (issue 28): MNN's console scripts
pip-install a logging SDK and send usage logs, and litert-torch pulls in hub clients; yoloxkit's
exports and runs of ncnn, MNN and LiteRT must do neither.

Every command runs in a child Python whose ``sitecustomize`` installs an audit hook (inherited by
any Python process it starts) that records each process started and each network call; a fake
``pip`` first on PATH records any call; and, where the kernel allows (``unshare -rn``), the whole
run is in a network namespace of its own, so native code cannot reach the network either."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from yoloxkit.weights import bundled_weights_path

pytestmark = pytest.mark.slow

SITECUSTOMIZE = textwrap.dedent('''
    import json, os, sys

    _LOG = os.environ["YOLOXKIT_AUDIT_LOG"]
    _EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
               "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto", "urllib.Request"}

    def _hook(event, args):
        if event not in _EVENTS:
            return
        if event == "socket.connect" and getattr(args[0], "family", None) == 1:  # AF_UNIX: local IPC
            return
        with open(_LOG, "a") as log:
            log.write(json.dumps({"event": event, "args": repr(args)[:300], "pid": os.getpid()}) + "\\n")

    sys.addaudithook(_hook)
''')

FAKE_PIP = "#!/bin/sh\necho \"$0 $*\" >> \"$YOLOXKIT_PIP_LOG\"\nexit 1\n"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (root / "bin").mkdir()
    for name in ("pip", "pip3", "uv"):
        fake = root / "bin" / name
        fake.write_text(FAKE_PIP)
        fake.chmod(0o755)
    return root


def _run(sandbox: Path, args: list[str]) -> subprocess.CompletedProcess:
    """``python -m yoloxkit ARGS`` audited, with the fake pip first on PATH, in a network
    namespace of its own when the kernel allows one."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(sandbox / "site"), env.get("PYTHONPATH", "")]),
        PATH=os.pathsep.join([str(sandbox / "bin"), env.get("PATH", "")]),
        YOLOXKIT_AUDIT_LOG=str(sandbox / "audit.jsonl"),
        YOLOXKIT_PIP_LOG=str(sandbox / "pip.log"),
    )
    command = [sys.executable, "-m", "yoloxkit", *args]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-rn", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=sandbox)


def _events(sandbox: Path) -> list[dict]:
    log = sandbox / "audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


CASES = [
    ("ncnn", ()),
    ("mnn", ("--half",)),
    ("tflite", ("--int8",)),  # converts the float graph too
]


@pytest.mark.parametrize("fmt,flags", CASES, ids=[f + "".join(f2.replace("--", "-") for f2 in fl) for f, fl in CASES])
def test_export_and_predict_install_nothing_and_reach_no_network(sandbox, fmt, flags, coco_mini, dog_jpg):
    out = sandbox / f"{fmt}{''.join(flags)}" / f"nano.{ {'ncnn': 'param'}.get(fmt, fmt) }"
    calib = ("--calib", str(coco_mini / "train2017"), "--calib-count", "4") if "--int8" in flags else ()
    done = _run(sandbox, ["export", "--weights", str(bundled_weights_path()), "--format", fmt, *flags, *calib,
                          "--size", "160", "--out", str(out)])
    assert done.returncode == 0, done.stderr[-2000:]
    done = _run(sandbox, ["predict", str(dog_jpg), "--weights", str(out), "--save-dir", str(sandbox / "pred")])
    assert done.returncode == 0, done.stderr[-2000:]
    events = _events(sandbox)
    assert not (sandbox / "pip.log").exists(), (sandbox / "pip.log").read_text()
    network = [e for e in events if e["event"].startswith(("socket", "urllib"))]
    assert network == [], network
    started = [e for e in events if e["event"] in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn")]
    assert not [e for e in started if "pip" in e["args"] or "install" in e["args"]], started


def test_the_audit_sees_a_pip_install_and_a_connection(sandbox, tmp_path):
    """The harness itself: a child that runs pip and opens a socket is caught (so the test above
    can fail)."""
    script = tmp_path / "bad.py"
    script.write_text("import socket, subprocess\n"
                      "subprocess.run(['pip', 'install', 'aliyun-log-python-sdk'])\n"
                      "s = socket.socket(); s.settimeout(0.2)\n"
                      "try:\n    s.connect(('10.255.255.1', 80))\nexcept OSError:\n    pass\n")
    env = dict(os.environ, PYTHONPATH=str(sandbox / "site"), PATH=f"{sandbox / 'bin'}{os.pathsep}{os.environ['PATH']}",
               YOLOXKIT_AUDIT_LOG=str(tmp_path / "audit.jsonl"), YOLOXKIT_PIP_LOG=str(tmp_path / "pip.log"))
    subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=60)
    events = [json.loads(line)["event"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert "subprocess.Popen" in events and "socket.connect" in events
    assert "install aliyun-log-python-sdk" in (tmp_path / "pip.log").read_text()
