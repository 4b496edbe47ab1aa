"""``--resume`` from the run folder alone (issue 32, defect 6): ``yoloxkit train --out RUN --resume``
with no ``--data``, ``--model`` or other flag continues a run with its own settings (its
``config.json``): each kill point of the fault run (tests/test_fault_run.py, whose machinery
this reuses) resumed that way ends exactly as the uninterrupted run. Also: flags that contradict
the run are refused in one line, those that may change are applied and reported, and a folder
without ``config.json`` or ``last.pth`` is one line."""

from __future__ import annotations

import json

import pytest

from tests import test_fault_run
from tests.test_fault_run import POINTS, _train
from tests.train_subset import one_thread, step_config
from yoloxkit.cli import main
from yoloxkit.engine import train
from yoloxkit.weights import read_checkpoint

setup = test_fault_run.setup  # the fault run's fixture: its data, its arguments and the uninterrupted run


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_resume_with_only_out_ends_like_the_uninterrupted_run(setup, point):
    root, args, full = setup
    out = root / f"folder-only-{point}"
    killed = _train(args + ["--out", str(out)], point)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    resumed = _train(["train", "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Traceback" not in resumed.stderr
    # the run's own model, size, epochs and batch (not yolox-s, 640, 300, 64), as the resumed run used them
    assert "model yolox-nano, input 128x128, multi-scale 96-160;" in resumed.stdout, resumed.stdout[-2000:]
    used = read_checkpoint(out / "last.pth")["train_state"]["config"]
    expected = json.loads((full / "config.json").read_text())
    for key in ("model", "size", "epochs", "batch_size", "data", "train_split", "val_split", "seed", "size_range",
                "max_iters_per_epoch", "warmup_epochs", "no_aug_epochs", "lr", "workers"):
        assert used[key] == expected[key], key
    from tests.test_fault_run import check_ends_like_the_uninterrupted_run

    check_ends_like_the_uninterrupted_run(out, full, point)


@pytest.fixture(scope="module")
def finished(coco_mini_4, tmp_path_factory):
    """A finished 1-epoch yolox-nano run at 64 px, batch 2."""
    out = tmp_path_factory.mktemp("resume-folder") / "run"
    with one_thread():
        train(step_config(coco_mini_4, out, epochs=1, eval_interval=0), log=lambda line: None)
    return coco_mini_4, out


def _cli(argv, capsys):
    with one_thread():
        code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_contradicting_flags_are_refused_in_one_line(finished, capsys):
    data, out = finished
    for flags, named in ((["--model", "yolox-s"], "--model yolox-s differs from the run's yolox-nano"),
                         (["--batch-size", "8"], "--batch-size 8 differs from the run's 2"),
                         (["--size", "96"], "--size 96 differs from the run's 64"),
                         (["--no-mosaic"], "--no-mosaic (off) differs from the run's on")):
        before = (out / "config.json").read_text()
        code, _, err = _cli(["train", "--out", str(out), "--resume", *flags], capsys)
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: --resume: "), err
        assert named in err and str(out / "config.json") in err
        assert (out / "config.json").read_text() == before  # refused before anything is written


def test_equal_flags_pass_and_changeable_ones_are_applied_and_reported(finished, capsys):
    data, out = finished
    code, stdout, err = _cli(["train", "--out", str(out), "--resume", "--data", str(data), "--model", "nano",
                              "--batch-size", "2", "--size", "64", "--workers", "0", "--eval-interval", "1",
                              "--no-progress"], capsys)
    assert code == 0, err
    assert "--resume: --eval-interval 1 applies from here on (the run had 0)" in stdout
    assert "all 1 epochs are done" in stdout
    saved = json.loads((out / "config.json").read_text())
    assert saved["eval_interval"] == 1 and saved["batch_size"] == 2 and saved["model"] == "yolox-nano"


def test_a_folder_without_config_json_or_last_pth_is_one_line(finished, tmp_path, capsys):
    _, out = finished
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "last.pth").write_bytes((out / "last.pth").read_bytes())
    code, _, err = _cli(["train", "--out", str(bare), "--resume"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "config.json" in err and "--data" in err, err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(["train", "--out", str(empty), "--resume"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "last.pth" in err, err


def test_a_checkpoint_of_another_model_is_one_line_not_a_state_dict_traceback(finished, tmp_path, capsys):
    data, out = finished
    other = tmp_path / "other"
    other.mkdir()
    (other / "last.pth").write_bytes((out / "last.pth").read_bytes())  # no config.json: the flags decide
    code, _, err = _cli(["train", "--data", str(data), "--model", "yolox-tiny", "--out", str(other), "--resume",
                         "--workers", "0", "--no-progress"], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "holds a yolox-nano run, not yolox-tiny" in err
