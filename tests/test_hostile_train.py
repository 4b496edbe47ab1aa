"""Issue 32 (hostile input), the training engine: one writer per run folder (defect 7), what a run
that failed after start-up leaves does not block the same command (11, second half), a full disk
ends a run in one line keeping its last good checkpoint (5), and a ``--size`` that the recipe's
multi-scale range ignores is said so (12)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.train_subset import make_subset, one_thread
from yoloxkit.cli import main
from yoloxkit.weights import read_checkpoint

REPO = Path(__file__).resolve().parents[1]

#: tiny yolox-nano runs at 64 px on the CPU: one epoch of two steps, no evaluation
TINY = ["--model", "yolox-nano", "--size", "64", "--batch-size", "2", "--epochs", "1", "--max-iters-per-epoch", "2",
        "--workers", "0", "--eval-interval", "0", "--no-progress", "--no-plots", "--device", "cpu"]

# a `yoloxkit train` that stops before its first step until a file appears; argv: READY GO train-args...
_PAUSED = r"""
import sys, time
from pathlib import Path
from yoloxkit.engine import trainer
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
real = trainer.Trainer.train_one_iter
def train_one_iter(self, batch):
    if not ready.exists():
        ready.write_text("running")
        while not go.exists():
            time.sleep(0.1)
    return real(self, batch)
trainer.Trainer.train_one_iter = train_one_iter
from yoloxkit.cli import main
sys.exit(main(sys.argv[3:]))
"""

# a `yoloxkit train` whose files may grow to at most LIMIT bytes (a full disk); argv: LIMIT train-args...
_LIMITED = r"""
import resource, signal, sys
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
from yoloxkit.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with one_thread():
        code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


# ------------------------------------------------------------------ 7: one writer per run folder
def test_a_second_run_into_a_folder_in_use_stops_at_once_naming_the_first(coco_mini_4, tmp_path, capsys):
    out, ready, go = tmp_path / "run", tmp_path / "ready", tmp_path / "go"
    first = subprocess.Popen(
        [sys.executable, "-c", _PAUSED, str(ready), str(go), "train", "--data", str(coco_mini_4), *TINY, "--out", str(out)],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.2)
        before = _listing(out)
        assert "config.json" in before
        for extra in ([], ["--exist-ok"], ["--resume"]):
            code, _, err = _cli(["train", "--data", str(coco_mini_4), *TINY, "--out", str(out), *extra], capsys)
            assert code == 2, (extra, err)
            assert len(err.splitlines()) == 1 and "Traceback" not in err
            assert f"error: run folder {out} is in use by another training run (pid {first.pid} on host" in err, err
            assert _listing(out) == before  # nothing written, nothing removed
        go.write_text("go")
        stdout, stderr = first.communicate(timeout=300)
    finally:
        go.write_text("go")
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr[-2000:]
    # the first run completed unaffected, and let go of the folder
    assert read_checkpoint(out / "last.pth")["train_state"]["epoch"] == 1
    assert json.loads((out / "history.json").read_text())[0]["epoch"] == 1
    assert not (out / ".lock").exists()
    assert _cli(["train", "--out", str(out), "--resume"], capsys)[0] == 0  # free again


def test_the_lock_without_fcntl_takes_over_a_dead_process_lock(tmp_path, monkeypatch):
    from yoloxkit.engine import run_lock

    monkeypatch.setattr(run_lock, "fcntl", None)  # the O_EXCL fallback of platforms without fcntl
    folder = tmp_path / "run"
    with run_lock.lock_run_folder(folder):
        with pytest.raises(run_lock.RunFolderInUse, match=f"pid {os.getpid()} on host"):
            run_lock.check_run_folder_free(folder)
    assert not folder.exists()  # the lock made the folder, and nothing else was written
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder.mkdir()
    record = {"pid": dead.pid, "host": run_lock.socket.gethostname(), "started": "earlier"}
    (folder / run_lock.LOCK_NAME).write_text(json.dumps(record))
    run_lock.check_run_folder_free(folder)  # its process has ended: stale
    with run_lock.lock_run_folder(folder):
        assert json.loads((folder / run_lock.LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (folder / run_lock.LOCK_NAME).exists()


# ------------------------------------------------------------------ 11b: a failed start's leftovers
def _unreadable_copy(coco_mini: Path, dest: Path) -> tuple[Path, list[str]]:
    """A 2-image COCO dataset whose image files are not images (fixed by copying the real ones)."""
    make_subset(coco_mini, dest, 2, splits=("train2017",))
    (dest / "train2017").unlink()
    (dest / "train2017").mkdir()
    names = [im["file_name"] for im in json.loads((dest / "annotations" / "instances_train2017.json").read_text())["images"]]
    for name in names:
        (dest / "train2017" / name).write_bytes(b"not an image")
    return dest, names


def test_a_run_that_failed_after_start_up_does_not_block_the_same_command(coco_mini, tmp_path, capsys):
    data, names = _unreadable_copy(coco_mini, tmp_path / "data")
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), *TINY, "--weights", "none", "--out", str(out)]
    code, _, err = _cli(argv, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "can be read" in err, err
    assert (out / "config.json").is_file() and not (out / "last.pth").exists()  # what the failed start left
    for name in names:  # the user fixes the images and runs the same command again
        shutil.copyfile(coco_mini / "train2017" / name, data / "train2017" / name)
    code, stdout, err = _cli(argv, capsys)
    assert code == 0, err
    assert f"removed what a run that ended before its first epoch left in {out}: config.json" in stdout
    assert read_checkpoint(out / "last.pth")["train_state"]["epoch"] == 1
    assert not (out / ".lock").exists()


# ------------------------------------------------------------------ 5: out of disk while training
def test_a_full_disk_ends_the_run_in_one_line_and_keeps_the_last_good_checkpoint(coco_mini_4, tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(["train", "--data", str(coco_mini_4), *TINY, "--out", str(out)], capsys)[0] == 0
    good = (out / "last.pth").read_bytes()
    # the next epoch's last.pth (megabytes) no longer fits; config.json and the logs still do
    limited = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(256 * 1024), "train", "--data", str(coco_mini_4), *TINY, "--out", str(out),
         "--resume", "--epochs", "2"],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    err = limited.stderr.strip()
    assert limited.returncode == 2, err[-2000:]
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("error:") and "last.pth" in err, err
    assert (out / "last.pth").read_bytes() == good  # the last good checkpoint, whole
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no partial file, no lock left


# ------------------------------------------------------------------ 12: the multi-scale line
def test_a_size_the_official_range_ignores_is_said_so(coco_mini_4, tmp_path, capsys):
    argv = ["train", "--data", str(coco_mini_4), *TINY, "--size", "256", "--weights", "none", "--max-iters-per-epoch",
            "1", "--out", str(tmp_path / "run")]
    code, stdout, err = _cli(argv, capsys)
    assert code == 0, err
    line = next(line for line in stdout.splitlines() if line.startswith("model yolox-nano, input 256x256"))
    assert ("multi-scale 320-640 (yolox-nano's official range, which --size does not change: 256 is the evaluation"
            " size") in line, line
    assert "--multiscale-range N trains at 256 +- N*32, --no-multiscale at 256 only" in line
    from yoloxkit.engine.config import default_config
    from yoloxkit.engine.multiscale import describe_input

    finetune = default_config("yolox-nano", size=256, device="cpu").resolved()  # a range centred on --size: no note
    assert describe_input(finetune, True) == "model yolox-nano, input 256x256, multi-scale 192-320"
    official = default_config("yolox-nano", weights="none", device="cpu").resolved()  # nano's own 416
    assert describe_input(official, True) == "model yolox-nano, input 416x416, multi-scale 320-640"
