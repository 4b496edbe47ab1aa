"""The fault run of issue 11: ``yoloxkit train`` SIGKILLed at five points, then ``--resume``.

Each run ends with the final weights of an uninterrupted run, no stray temporary files, and a
results table that names only files that exist. The kill is injected in a child process that
runs the real CLI (``python -c``), so nothing of the killed process survives but its files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train_subset import make_subset
from yoloxkit.weights import read_checkpoint

REPO = Path(__file__).resolve().parents[1]

# Runs the CLI with a SIGKILL at one point; argv: POINT, then the train arguments.
_INJECT = r"""
import os, signal, sys
import torch
point, argv = sys.argv[1], sys.argv[2:]
calls = {}

def kill_on(name, nth):
    calls[name] = calls.get(name, 0) + 1
    if calls[name] == nth:
        os.kill(os.getpid(), signal.SIGKILL)

from yoloxkit.engine import hooks, trainer
if point == "mid-epoch":
    real_iter = trainer.Trainer.train_one_iter
    def train_one_iter(self, batch):
        if self.state.global_iter == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_iter(self, batch)
    trainer.Trainer.train_one_iter = train_one_iter
elif point in ("saving-last", "saving-best"):
    real_save, prefix = torch.save, ".last.pth." if point == "saving-last" else ".best.pth."
    def save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        if os.path.basename(str(f)).startswith(prefix):
            calls["save"] = calls.get("save", 0) + 1
            if calls["save"] == (2 if point == "saving-last" else 1):  # best: the starting weights' (epoch 0)
                os.truncate(f, os.path.getsize(f) // 2)  # half written, like a kill inside torch.save
                os.kill(os.getpid(), signal.SIGKILL)
    torch.save = save
elif point == "evaluating":
    real_eval = hooks.evaluate_split
    def evaluate_split(*args, **kwargs):
        kill_on("eval", 2)
        return real_eval(*args, **kwargs)
    hooks.evaluate_split = evaluate_split
elif point == "plotting":
    real_plot = hooks.plot_losses
    def plot_losses(*args, **kwargs):
        kill_on("plot", 1)
        return real_plot(*args, **kwargs)
    hooks.plot_losses = plot_losses
from yoloxkit.cli import main
sys.exit(main(argv))
"""

POINTS = ("mid-epoch", "saving-last", "saving-best", "evaluating", "plotting")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    return env


def _train(args: list[str], point: str | None = None) -> subprocess.CompletedProcess:
    code = _INJECT if point else "import sys; from yoloxkit.cli import main; sys.exit(main(sys.argv[2:]))"
    return subprocess.run([sys.executable, "-c", code, point or "-", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def setup(coco_mini, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    data = make_subset(coco_mini, root / "data", 4, splits=("train2017", "val2017"))
    config = root / "run.yaml"
    config.write_text("size_range: [96, 160]\nwarmup_epochs: 1\nno_aug_epochs: 1\ntensorboard: false\n")
    args = ["train", "--data", str(data), "--model", "yolox-nano", "--epochs", "3", "--batch-size", "2",
            "--size", "128", "--max-iters-per-epoch", "2", "--workers", "2", "--seed", "4", "--config", str(config),
            "--no-progress"]
    full = root / "full"
    done = _train(args + ["--out", str(full)])
    assert done.returncode == 0, done.stderr[-2000:]
    return root, args, full


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = read_checkpoint(path)
    return {**ckpt["model"], **{f"raw.{k}": v for k, v in ckpt.get("train_state", {}).get("model", {}).items()}}


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_resume_ends_like_the_uninterrupted_run(setup, point):
    root, args, full = setup
    out = root / point
    killed = _train(args + ["--out", str(out)], point)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    resumed = _train(args + ["--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Traceback" not in resumed.stderr
    check_ends_like_the_uninterrupted_run(out, full, point)


def check_ends_like_the_uninterrupted_run(out: Path, full: Path, point: str) -> None:
    """What a resumed fault run ends with: the uninterrupted run's ``full`` last.pth and best.pth,
    no stray temporary files, a results table naming only files that exist, the plots and history
    (also used by tests/test_resume_from_folder.py)."""
    for name in ("last.pth", "best.pth"):
        expected, got = _weights(full / name), _weights(out / name)
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected), f"{point}: {name} differs"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no stray temporary files
    table = (out / "results.txt").read_text()
    listed = [line.split()[0] for line in table.splitlines() if line.startswith("  ") and not line.strip().startswith("yoloxkit")]
    assert listed and all(Path(p).exists() for p in listed), listed
    assert (out / "loss_curves.png").is_file() and (out / "history.json").is_file()
