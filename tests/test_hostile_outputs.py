"""Issue 32 (hostile input), the outputs: an output that cannot be written never costs the work
(defect 5), and the weights-path messages and torch warnings of item 12.

Every command checks each output it will write before any work and stops with one line naming
the option, the file and why; a write that still fails mid-run (a full disk, simulated with
RLIMIT_FSIZE in a child process or an ENOSPC raised in-process) keeps whatever else can be kept.
The tests run as root, so an unwritable path is one under a regular file.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import pytest
import torch

from yoloxkit.cli import main

REPO = Path(__file__).resolve().parents[1]

# the CLI in a child process whose files may grow to at most LIMIT bytes; argv: LIMIT command-args...
_LIMITED = r"""
import resource, signal, sys
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
from yoloxkit.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""

# atomic_torch_save (every checkpoint write of training) in such a child; argv: LIMIT PATH
_LIMITED_SAVE = r"""
import resource, signal, sys
import torch
from yoloxkit.io import atomic_torch_save
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
atomic_torch_save({"weights": torch.zeros(100_000)}, sys.argv[2])
"""

SMALL = ["--size", "64"]


def _limited(limit: int, argv: list[str], cwd: Path, script: str = _LIMITED) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-c", script, str(limit), *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def _hidden(folder: Path) -> list[str]:
    """Temporary files (``.name.xxxx``) left in ``folder``, recursively."""
    return [str(p) for p in folder.rglob(".*")]


@pytest.fixture()
def afile(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("a regular file, not a folder\n")
    return path


@pytest.fixture(scope="module")
def frames(tmp_path_factory, dog_jpg: Path) -> Path:
    """A folder of three small frames."""
    folder = tmp_path_factory.mktemp("frames")
    image = cv2.resize(cv2.imread(str(dog_jpg)), (160, 120))
    for k in range(1, 4):
        cv2.imwrite(str(folder / f"{k:06d}.jpg"), image)
    return folder


@pytest.fixture(scope="module")
def three_images(tmp_path_factory, dog_jpg: Path) -> Path:
    folder = tmp_path_factory.mktemp("three")
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(dog_jpg, folder / name)
    return folder


# --------------------------------------------------------- 5: every output checked before the work
def _before_work_cases():
    """(id, argv from (afile, data), option, path under afile); each must stop before any work."""
    def at(afile: Path, name: str) -> str:
        return str(afile / name)

    return [
        ("predict-json-out", lambda a, d: ["predict", str(d["dog"]), "--no-save", *SMALL, "--json-out", at(a, "p.json")],
         "--json-out", "p.json"),
        ("predict-save-dir", lambda a, d: ["predict", str(d["dog"]), *SMALL, "--save-dir", at(a, "out"), "--json-out",
                                           str(d["tmp"] / "kept.json")], "--save-dir", "out"),
        ("track-json-out", lambda a, d: ["track", str(d["frames"]), "--tracker", "iou", "--no-save", *SMALL,
                                         "--json-out", at(a, "t.json")], "--json-out", "t.json"),
        ("track-mot-out", lambda a, d: ["track", str(d["frames"]), "--tracker", "iou", "--no-save", *SMALL,
                                        "--mot-out", at(a, "rows.txt")], "--mot-out", "rows.txt"),
        ("track-save-dir", lambda a, d: ["track", str(d["frames"]), "--tracker", "iou", *SMALL, "--save-dir",
                                         at(a, "videos")], "--save-dir", "videos"),
        ("track-eval-json-out", lambda a, d: ["track-eval", "--gt", str(d["frames"]), "--pred", str(d["frames"]),
                                              "--json-out", at(a, "s.json")], "--json-out", "s.json"),
        ("eval-json-out", lambda a, d: ["eval", "--data", str(d["coco"]), *SMALL, "--no-progress", "--json-out",
                                        at(a, "m.json")], "--json-out", "m.json"),
        ("eval-plots", lambda a, d: ["eval", "--data", str(d["coco"]), *SMALL, "--no-progress", "--plots",
                                     at(a, "plots")], "--plots", "plots"),
        ("export-out", lambda a, d: ["export", "--model", "yolox-nano", *SMALL, "--out", at(a, "m.onnx")],
         "--out", "m.onnx"),
        ("convert-destination", lambda a, d: ["convert", "yolox-nano", at(a, "c.pth")], "destination", "c.pth"),
        ("show-batch-out", lambda a, d: ["show-batch", "--data", str(d["coco"]), *SMALL, "--count", "1", "--out",
                                         at(a, "b.png")], "--out", "b.png"),
        ("convert-dataset-destination", lambda a, d: ["convert-dataset", str(d["coco"]), at(a, "ds"), "--to", "yolo"],
         "destination", "ds"),
        ("make-small-objects-out", lambda a, d: ["make-small-objects", "--source", str(d["coco"]), "--split",
                                                 "train2017", "--out", at(a, "mso"), "--no-progress"], "--out", "mso"),
        ("make-tracking-set-out", lambda a, d: ["make-tracking-set", "--source", str(d["coco"]), "--split", "train2017",
                                                "--out", at(a, "mts"), "--no-progress"], "--out", "mts"),
    ]


BEFORE_WORK = _before_work_cases()


@pytest.mark.parametrize("case", BEFORE_WORK, ids=[c[0] for c in BEFORE_WORK])
def test_an_unwritable_output_stops_the_command_before_any_work(case, afile, tmp_path, dog_jpg, frames, coco_mini_4,
                                                                capsys):
    _, argv, option, name = case
    data = {"dog": dog_jpg, "frames": frames, "coco": coco_mini_4, "tmp": tmp_path}
    code, out, err = _cli(argv(afile, data), capsys)
    assert code == 2, err
    assert _one_line(err) == f"error: cannot write {option} {afile / name}: its folder {afile} is a file"
    assert out.strip() == "", out  # nothing ran: no model line, no result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing written


def test_an_output_folder_that_is_a_file_and_a_file_that_is_a_folder(afile, tmp_path, dog_jpg, capsys):
    code, out, err = _cli(["predict", str(dog_jpg), *SMALL, "--save-dir", str(afile)], capsys)
    assert code == 2 and _one_line(err) == f"error: cannot write --save-dir {afile}: it is a file"
    code, out, err = _cli(["predict", str(dog_jpg), *SMALL, "--no-save", "--json-out", str(tmp_path)], capsys)
    assert code == 2 and _one_line(err) == f"error: cannot write --json-out {tmp_path}: it is a folder"
    assert out.strip() == ""


# --------------------------------------------------------- 5: a write that fails mid-run
def test_a_full_disk_under_save_dir_still_writes_the_json_of_every_image(three_images, tmp_path):
    # the annotated copies (~100 KB each) no longer fit; the JSON (< 1 KB) does
    done = _limited(20_000, ["predict", str(three_images), *SMALL, "--no-progress", "--save-dir", "out",
                             "--json-out", "preds.json"], tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert _one_line(done.stderr) == (
        f"error: cannot write image {Path('out') / 'a.jpg'}: File too large (2 more images not saved);"
        " the JSON was written to preds.json")
    records = json.loads((tmp_path / "preds.json").read_text())
    assert [r["image"] for r in records] == ["a.jpg", "b.jpg", "c.jpg"] and all("error" not in r for r in records)
    assert list((tmp_path / "out").iterdir()) == []  # no half-written picture, no temporary file


def test_plots_that_cannot_be_written_keep_the_metrics_and_the_json(coco_mini_4, tmp_path, monkeypatch, capsys):
    from matplotlib.figure import Figure

    def full_disk(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full_disk)
    plots, metrics = tmp_path / "plots", tmp_path / "metrics.json"
    code, out, err = _cli(["eval", "--data", str(coco_mini_4), *SMALL, "--no-progress", "--json-out", str(metrics),
                           "--plots", str(plots)], capsys)
    assert code == 2, err
    assert _one_line(err) == (f"error: cannot write plot {plots / 'pr_curves.png'}: No space left on device;"
                              f" the metrics were written to {metrics}")
    assert "Average Precision" in out and f"metrics written to {metrics}" in out
    assert "AP" in json.loads(metrics.read_text())
    assert list(plots.iterdir()) == []  # the half-written picture was removed


def test_a_full_disk_while_tracking_keeps_the_records_of_the_frames_done(frames, tmp_path, monkeypatch, capsys):
    from yoloxkit.tracking import run as tracking_run

    real_rows = tracking_run.format_mot_rows

    def rows(number, *args):  # the MOT file's disk fills up at the second frame
        if number == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rows(number, *args)

    monkeypatch.setattr(tracking_run, "format_mot_rows", rows)
    mot, records = tmp_path / "rows.txt", tmp_path / "frames.json"
    code, out, err = _cli(["track", str(frames), "--tracker", "iou", "--no-save", "--no-progress", *SMALL,
                           "--mot-out", str(mot), "--json-out", str(records)], capsys)
    assert code == 2, err
    assert _one_line(err) == (f"error: cannot write {mot}: No space left on device; the records of the frames done"
                              f" were written to {records}")
    assert [r["frame"] for r in json.loads(records.read_text())] == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.json"]  # no half-written rows file


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_full_disk_during_export_keeps_the_previous_file(fmt, tmp_path):
    out = tmp_path / "models" / f"m.{fmt}"
    out.parent.mkdir()
    out.write_bytes(b"the previous export")
    done = _limited(200_000, ["export", "--model", "yolox-nano", *SMALL, "--format", fmt, "--out", str(out)], tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]  # TorchScript used to abort the process (SIGABRT)
    assert _one_line(done.stderr) == f"error: cannot write {out}: File too large"
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_a_checkpoint_that_does_not_fit_keeps_the_previous_one(tmp_path):
    last = tmp_path / "run" / "last.pth"
    last.parent.mkdir()
    torch.save({"epoch": 1}, last)
    good = last.read_bytes()
    done = _limited(50_000, [str(last)], tmp_path, script=_LIMITED_SAVE)
    assert done.returncode != 0 and "OutputError: cannot write" in done.stderr, done.stderr[-2000:]
    assert f"cannot write {last}: write failed (disk full?): [enforce fail at inline_container.cc" in done.stderr
    assert last.read_bytes() == good and sorted(p.name for p in last.parent.iterdir()) == ["last.pth"]


# --------------------------------------------------------- 5: the writers and the check, as units
def test_check_writable_names_the_file_and_the_reason_and_creates_nothing(afile, tmp_path, monkeypatch):
    from yoloxkit.errors import OutputError
    from yoloxkit.io import check_writable, check_writable_dir

    assert check_writable(tmp_path / "new" / "deeper" / "out.json", "--json-out") == tmp_path / "new" / "deeper" / "out.json"
    assert check_writable_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # checked, not created
    with pytest.raises(OutputError, match=f"^cannot write --json-out {afile}/x/y.json: its folder {afile} is a file$"):
        check_writable(afile / "x" / "y.json", "--json-out")
    with pytest.raises(OutputError, match=f"^cannot write --plots {afile}: it is a file$"):
        check_writable_dir(afile, "--plots")
    with pytest.raises(OutputError, match=f"^cannot write {tmp_path}: it is a folder$"):
        check_writable(tmp_path)

    real_write = os.write

    def full(fd, data):  # the disk of tmp_path is full; every other file descriptor writes as usual
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OutputError, match=f"^cannot write --json-out {tmp_path}/p.json: No space left on device$"):
        check_writable(tmp_path / "p.json", "--json-out")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_the_atomic_writers_turn_a_failed_write_into_one_line_and_keep_the_old_file(tmp_path, monkeypatch):
    from yoloxkit.errors import OutputError
    from yoloxkit.io import atomic_path, atomic_torch_save, atomic_write_text

    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(OutputError, match=f"^cannot write --json-out {target}: No space left on device$"):
        with atomic_path(target, what="--json-out") as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    real_write_text = Path.write_text

    def full(self, *args, **kwargs):
        real_write_text(self, "ha")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError, match=f"^cannot write {target}: No space left on device$"):
        atomic_write_text("new", target)
    monkeypatch.undo()
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]

    checkpoint = tmp_path / "last.pth"
    torch.save({"epoch": 1}, checkpoint)
    good = checkpoint.read_bytes()
    real_save = torch.save

    def enforce_fail(obj, f, *args, **kwargs):
        real_save({"partial": True}, f)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file"
                           " data/0: file write failed\nframe #0: c10::ThrowEnforceNotMet")

    monkeypatch.setattr(torch, "save", enforce_fail)
    with pytest.raises(OutputError) as caught:
        atomic_torch_save({"epoch": 2}, checkpoint)
    assert str(caught.value) == (f"cannot write {checkpoint}: write failed (disk full?): [enforce fail at"
                                 " inline_container.cc:672] . PytorchStreamWriter failed writing file data/0:"
                                 " file write failed")
    assert checkpoint.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["last.pth", "out.json"]
    with pytest.raises(ValueError):  # an error that is not a failed write passes through unchanged
        with atomic_path(target) as tmp:
            raise ValueError("not a write")


# --------------------------------------------------------- 12: weights paths
def test_a_weights_folder_is_named_as_a_folder_with_the_file_it_likely_meant(tmp_path, dog_jpg, capsys):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    code, _, err = _cli(["predict", str(dog_jpg), "--no-save", "--weights", str(run)], capsys)
    assert code == 2 and _one_line(err) == f"error: --weights {run} is a folder, not a weights file"
    (run / "last.pth").write_bytes(b"")
    (run / "best.pth").write_bytes(b"")
    code, _, err = _cli(["export", "--weights", str(run), "--out", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and _one_line(err) == (
        f"error: --weights {run} is a folder, not a weights file (did you mean {run / 'best.pth'}?)")


def test_an_openvino_model_without_its_bin_names_the_missing_file(tmp_path, dog_jpg, capsys):
    xml = tmp_path / "m.xml"
    xml.write_text('<?xml version="1.0"?><net name="m" version="11"><layers/></net>')
    code, _, err = _cli(["predict", str(dog_jpg), "--no-save", "--weights", str(xml)], capsys)
    assert code == 2
    assert _one_line(err) == f"error: OpenVINO model {xml} needs its weights file m.bin beside it (not found)"


# --------------------------------------------------------- 12: no torch warnings from an export
@pytest.mark.parametrize("argv", [
    ["--model", "yolox-nano", "--nms", "--dynamic"],
    ["--model", "yolox-nano", "--nms", "--format", "torchscript"],
    ["--model", "yolox-nano-e2e", "--topk", "5"],
], ids=["onnx-nms", "torchscript-nms", "onnx-topk"])
def test_an_export_raises_no_warning_a_user_cannot_act_on(argv, tmp_path, capsys):
    out = tmp_path / "m.export"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = _cli(["export", *argv, *SMALL, "--out", str(out)], capsys)
    assert code == 0, err
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
