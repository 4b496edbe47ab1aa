"""Command-line messages: argparse errors are one line naming the command, and the ``yoloxkit``
command waits passively in OpenMP unless the user chose a policy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yoloxkit.cli import invoked_as_command, main, prefer_passive_openmp


@pytest.mark.parametrize(
    "argv, command, message",
    [
        (["predict", "--bogus", "x"], "yoloxkit predict", "unrecognized arguments: --bogus"),
        (["predict", "--conf", "2", "a.jpg"], "yoloxkit predict", "argument --conf: must be in [0, 1], got 2"),
        (["eval"], "yoloxkit eval", "the following arguments are required: --data"),
        (["train", "--data", "d", "--epochs", "x"], "yoloxkit train", "argument --epochs: invalid int value: 'x'"),
        (["export", "--opset", "x"], "yoloxkit export", "argument --opset:"),
        (["serve", "--port", "70000"], "yoloxkit serve", "argument --port: must be in 0..65535"),
        (["bogus"], "yoloxkit", "argument COMMAND: invalid choice: 'bogus'"),
        (["--bogus"], "yoloxkit", "unrecognized arguments: --bogus"),
    ],
)
def test_argparse_errors_are_one_line_of_the_command(argv, command, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.endswith("\n")
    [line] = err.splitlines()
    assert line.startswith(f"{command}: error: {message}"), line
    assert line.endswith(f" (see {command} --help)")
    assert "usage:" not in err


def test_unknown_option_in_a_real_process():
    done = subprocess.run(
        [sys.executable, "-m", "yoloxkit", "predict", "--bogus", "x"], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "yoloxkit predict: error: unrecognized arguments: --bogus (see yoloxkit predict --help)\n"


# ------------------------------------------------------------------------------------ OpenMP

@pytest.mark.parametrize(
    "argv, orig_argv, expected",
    [
        (["/venv/bin/yoloxkit", "predict"], ["/venv/bin/python", "/venv/bin/yoloxkit", "predict"], True),
        (["-m", "predict"], ["python", "-m", "yoloxkit", "predict"], True),
        (["-m"], ["python", "-X", "dev", "-u", "-m", "yoloxkit", "train"], True),  # as torchrun starts it
        (["-m"], ["python", "-myoloxkit.cli"], True),
        (["-m"], ["python", "-m", "pytest", "-m", "yoloxkit"], False),
        (["app.py"], ["python", "app.py", "-m", "yoloxkit"], False),
        (["-c"], ["python", "-c", "import yoloxkit"], False),
        (["/home/me/yoloxkit_demo.py"], ["python", "/home/me/yoloxkit_demo.py"], False),
    ],
)
def test_invoked_as_command(argv, orig_argv, expected):
    assert invoked_as_command(argv, orig_argv) is expected


def test_prefer_passive_keeps_a_users_choice():
    environ = {}
    assert prefer_passive_openmp(environ) is True and environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert prefer_passive_openmp(environ) is False and environ == {"OMP_WAIT_POLICY": "ACTIVE"}


# Records what OMP_WAIT_POLICY is when torch is first imported (the OpenMP runtime reads it
# once, when torch loads it), and at exit.
PROBE = """
import atexit, json, os, sys

seen = {}

class _Probe:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and "at_torch_import" not in seen:
            seen["at_torch_import"] = os.environ.get("OMP_WAIT_POLICY")
        return None

sys.meta_path.insert(0, _Probe())

def _write():
    seen["at_exit"] = os.environ.get("OMP_WAIT_POLICY")
    with open(os.environ["OMP_PROBE_OUT"], "w") as f:
        json.dump(seen, f)

atexit.register(_write)
"""


def _console_script() -> Path:
    script = Path(sys.executable).with_name("yoloxkit")
    assert script.is_file(), f"the yoloxkit console script is not installed beside {sys.executable}"
    return script


@pytest.mark.parametrize(
    "how, policy, expected",
    [
        ("script", None, "PASSIVE"),
        ("module", None, "PASSIVE"),
        ("module", "ACTIVE", "ACTIVE"),
        ("library", None, None),
    ],
)
def test_openmp_wait_policy_before_torch_loads(how, policy, expected, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(PYTHONPATH=str(tmp_path), OMP_PROBE_OUT=str(out))
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    command = {
        "script": [str(_console_script()), "--version"],
        "module": [sys.executable, "-m", "yoloxkit", "--version"],
        "library": [sys.executable, "-c", "import yoloxkit"],
    }[how]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(out.read_text())
    assert seen == {"at_torch_import": expected, "at_exit": expected}
