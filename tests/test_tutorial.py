"""docs/custom_dataset.md in miniature, so the tutorial cannot rot.

The steps of the tutorial run in-process through ``yoloxkit.cli.main`` on a 6 + 6 image VOC copy of
coco-mini: convert-dataset, check-data, show-batch, train (yolox-nano from the bundled weights, two
tiny iterations), resume, eval, predict on a folder and on a 3-frame video, export to ONNX. The
other tests read the doc itself: every ``yoloxkit`` command in its shell blocks must parse with the
real CLI parser, and its model table must match the zoo.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.train_subset import make_subset, one_thread
from yoloxkit.cli import build_parser, main

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom_dataset.md"
SIZE = "160"


# ---------------------------------------------------------------- the doc itself
def _code_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M) if m.group(1) in languages]


def _doc_commands(doc: Path = DOC, languages: tuple[str, ...] = ("bash", "sh", "shell")) -> list[list[str]]:
    """Every ``yoloxkit ...`` command in the doc's shell blocks, as argv (continuations joined)."""
    commands = []
    for block in _code_blocks(doc.read_text(encoding="utf-8"), languages):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "yoloxkit":
                commands.append(words)
    return commands


def _subparsers() -> dict:
    import argparse

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_doc_command_and_flag_exists():
    commands = _doc_commands()
    used = {argv[1] for argv in commands}
    # The tutorial walks through all of these.
    assert {"convert-dataset", "check-data", "show-batch", "train", "eval", "predict", "export"} <= used, used
    _check_commands(commands)


def test_training_controls_doc_commands_parse():
    commands = _doc_commands(DOC.parent / "training_controls.md", ("", "bash", "sh", "shell"))
    flags = {word for argv in commands for word in argv}
    assert {"--patience", "--time", "--resume", "--epochs"} <= flags, flags
    _check_commands(commands)


def _check_commands(commands: list[list[str]]) -> None:
    subparsers = _subparsers()
    for argv in commands:
        name = argv[1]
        assert name in subparsers, f"doc uses `yoloxkit {name}`, which is not a command: {shlex.join(argv)}"
        known = subparsers[name]._option_string_actions
        for word in argv[2:]:
            if word.startswith("--"):
                flag = word.split("=", 1)[0]
                assert flag in known, f"`yoloxkit {name}` has no flag {flag}: {shlex.join(argv)}"
        try:  # the whole command line parses (required flags, choices, value types)
            subparsers[name].parse_args(argv[2:])
        except SystemExit:
            pytest.fail(f"the doc's command does not parse: {shlex.join(argv)}")


def test_doc_model_table_matches_the_zoo():
    from yoloxkit.models import get_spec

    rows = [line.split("|")[1:-1] for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| yolox-")]
    assert [r[0].strip() for r in rows] == [
        "yolox-nano", "yolox-tiny", "yolox-s", "yolox-m", "yolox-l", "yolox-x", "yolox-darknet53",
    ]
    for name, size, params, gflops, ap, *_ in rows:
        spec = get_spec(name.strip())
        assert int(size) == spec.input_size, name
        assert int(params.replace(",", "")) == spec.params, name
        assert float(gflops) == pytest.approx(spec.gflops), name
        assert float(ap) == pytest.approx(spec.coco_ap), name


def test_doc_weights_snippets_name_real_functions():
    from yoloxkit import weights

    text = DOC.read_text(encoding="utf-8")
    assert "`--weights yolox-s`" in text and "`none`" in text  # zoo names and random weights
    assert weights.resolve_weights_source(None, "yolox-nano").path == weights.bundled_weights_path()
    assert weights.bundled_weights_path().is_file()
    assert "from yoloxkit.weights import download_official" in text and callable(weights.download_official)


def test_doc_config_keys_are_training_options(tmp_path):
    from yoloxkit.engine.config import TrainConfig, load_config

    text = DOC.read_text(encoding="utf-8")
    keys = ("no_aug_epochs: 5", "size_range: [320, 512]")
    assert all(f"`{key}`" in text for key in keys)
    config = tmp_path / "train.yaml"
    config.write_text("\n".join(keys) + "\n")
    loaded = load_config(str(config), TrainConfig())
    assert (loaded.no_aug_epochs, tuple(loaded.size_range)) == (5, (320, 512))


# ---------------------------------------------------------------- the steps, in miniature
@pytest.fixture(scope="module")
def voc(coco_mini, tmp_path_factory) -> Path:
    """Step 1: a COCO subset (6 train + 6 val images, all 80 categories) converted to VOC."""
    root = tmp_path_factory.mktemp("tutorial")
    coco = root / "coco"
    make_subset(coco_mini, coco, 6, split="train2017", splits=("train2017",))
    make_subset(coco_mini, coco, 6, split="val2017", splits=("val2017",))
    assert main(["convert-dataset", str(coco), str(root / "my-voc"), "--to", "voc"]) == 0
    return root / "my-voc"


@pytest.fixture(scope="module")
def trained(voc) -> Path:
    """Step 3: yolox-nano fine-tuned from the bundled weights, two iterations at 160."""
    out = voc.parent / "runs" / "nano-voc"
    argv = _train_argv(voc, out)
    with one_thread():
        assert main(argv) == 0
        # --resume on a finished run: restores the state, trains nothing more, exits cleanly.
        assert main(argv + ["--resume"]) == 0
    return out


def test_resumed_run_reports_the_voc_metric_by_name(voc, trained, capsys):
    with one_thread():
        assert main(_train_argv(voc, trained) + ["--resume"]) == 0
    output = capsys.readouterr()
    done = [line for line in (output.out + output.err).splitlines() if line.startswith("done:")]
    assert done and "(mAP50 " in done[-1], done


def _train_argv(voc: Path, out: Path) -> list[str]:
    from yoloxkit.weights import bundled_weights_path

    return [
        "train", "--data", str(voc), "--model", "yolox-nano", "--weights", str(bundled_weights_path()),
        "--epochs", "1", "--batch-size", "2", "--size", SIZE, "--workers", "0", "--max-iters-per-epoch", "2",
        "--no-aug", "--no-multiscale", "--eval-interval", "1", "--no-progress", "--out", str(out),
    ]


def test_doc_python_snippets_run(voc, trained, monkeypatch, capsys):
    """The doc's Python blocks run as written in a folder laid out as the tutorial's (the one that
    downloads official weights is left out: no network in tests)."""
    monkeypatch.chdir(voc.parent)  # holds my-voc/ and runs/nano-voc/, as in the tutorial
    shutil.copytree(voc, "my-data")  # the "your own data" snippet writes its split lists here
    blocks = [b for b in _code_blocks(DOC.read_text(encoding="utf-8"), ("python",)) if "download_official" not in b]
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "__doc_snippet__"})
    ids = sorted(p.stem for p in Path("my-data/Annotations").glob("*.xml"))
    train = Path("my-data/ImageSets/Main/train.txt").read_text().split()
    val = Path("my-data/ImageSets/Main/val.txt").read_text().split()
    assert sorted(train + val) == ids and len(val) >= 1 and not set(train) & set(val)
    assert main(["check-data", "--data", "my-data", "--split", "val", "--no-progress"]) == 0
    capture = cv2.VideoCapture("clip.mp4")
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (480, 640, 3)
    assert '"detections"' in capsys.readouterr().out.replace("'", '"')  # the Detector snippet printed JSON


def test_converted_voc_layout(voc, coco_mini):
    from yoloxkit.coco_names import COCO_NAMES

    assert (voc / "labels.txt").read_text(encoding="utf-8").splitlines() == list(COCO_NAMES)
    for split in ("train2017", "val2017"):
        ids = (voc / "ImageSets" / "Main" / f"{split}.txt").read_text(encoding="utf-8").split()
        assert len(ids) == 6
        for image_id in ids:
            assert (voc / "Annotations" / f"{image_id}.xml").is_file()
            assert (voc / "JPEGImages" / f"{image_id}.jpg").is_file()


def test_check_data(voc, capsys):
    assert main(["check-data", "--data", str(voc), "--no-progress"]) == 0
    report = capsys.readouterr().out
    assert "80 classes" in report and "split train2017: 6 images" in report and "split val2017: 6 images" in report


def test_show_batch(voc, tmp_path):
    out = tmp_path / "batch.png"
    assert main(["show-batch", "--data", str(voc), "--model", "yolox-nano", "--size", SIZE, "--count", "2",
                 "--out", str(out)]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.std() > 10  # pictures, not a blank canvas


def test_train_outputs(trained, capsys):
    from yoloxkit.weights import read_checkpoint

    best, last = read_checkpoint(trained / "best.pth"), read_checkpoint(trained / "last.pth")
    assert best["model_name"] == last["model_name"] == "yolox-nano"
    assert len(best["names"]) == 80 and best["names"][0] == "person"
    assert last["train_state"]["epoch"] == 1
    history = json.loads((trained / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1]
    assert list((trained / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("loss_curves.png", "ap_per_epoch.png"):
        assert (trained / name).stat().st_size > 1000, name


def test_eval_voc_metrics_and_plots(voc, trained, capsys):
    out_json, plots = trained / "val.json", trained / "plots"
    assert main(["eval", "--data", str(voc), "--split", "val2017", "--weights", str(trained / "best.pth"),
                 "--size", SIZE, "--json-out", str(out_json), "--plots", str(plots), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "VOC mAP@0.5" in printed and "6 images" in printed
    metrics = json.loads(out_json.read_text())
    for key in ("mAP50", "mAP50_voc07", "mAP50_95"):
        assert 0.0 <= metrics[key] <= 100.0, (key, metrics[key])
    assert metrics["mAP50"] >= metrics["mAP50_95"]
    assert len(metrics["per_class"]) == 80
    assert any(v is None for v in metrics["per_class"].values())  # classes absent from 6 images
    assert any(v is not None and v > 0 for v in metrics["per_class"].values())
    for name in ("pr_curves.png", "pr_per_class.png", "confusion_matrix.png", "worst_images.png"):
        assert (plots / name).stat().st_size > 1000, name


def test_predict_folder_and_video(voc, trained, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    pictures = sorted((voc / "JPEGImages").glob("*.jpg"))[:2]
    for path in pictures:
        shutil.copy(path, folder / path.name)
    # A 3-frame video made from dataset pictures, as the tutorial's snippet does.
    clip = tmp_path / "clip.mp4"
    video = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (192, 144))
    for path in sorted((voc / "JPEGImages").glob("*.jpg"))[:3]:
        video.write(cv2.resize(cv2.imread(str(path)), (192, 144)))
    video.release()

    save_dir, results = tmp_path / "predict", tmp_path / "predict.json"
    weights = str(trained / "best.pth")
    assert main(["predict", str(folder), "--weights", weights, "--size", SIZE, "--conf", "0.3",
                 "--save-dir", str(save_dir), "--json-out", str(results), "--no-progress"]) == 0
    records = json.loads(results.read_text())
    assert [r["image"] for r in records] == [p.name for p in pictures]
    for path in pictures:
        assert cv2.imread(str(save_dir / path.name)).shape == cv2.imread(str(path)).shape

    clip_json = tmp_path / "clip.json"
    assert main(["predict", str(clip), "--weights", weights, "--size", SIZE, "--conf", "0.3",
                 "--save-dir", str(save_dir), "--json-out", str(clip_json), "--no-progress"]) == 0
    frames = json.loads(clip_json.read_text())
    assert [r["frame"] for r in frames] == [0, 1, 2]
    assert all(r["width"] == 192 and r["height"] == 144 for r in frames)
    capture = cv2.VideoCapture(str(save_dir / "clip.mp4"))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 3


def test_export_onnx_runs_in_onnxruntime(trained, voc, tmp_path, capsys):
    import onnxruntime as ort

    onnx_path = tmp_path / "nano-voc.onnx"
    assert main(["export", "--model", "yolox-nano", "--weights", str(trained / "best.pth"), "--format", "onnx",
                 "--size", SIZE, "--out", str(onnx_path)]) == 0
    assert "verified in onnxruntime" in capsys.readouterr().out
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    (output,) = session.run(None, {"images": np.zeros((1, 3, 160, 160), np.float32)})
    anchors = sum((160 // s) ** 2 for s in (8, 16, 32))
    assert output.shape == (1, anchors, 85)

    nms_path = tmp_path / "nano-voc-nms.onnx"
    assert main(["export", "--model", "yolox-nano", "--weights", str(trained / "best.pth"), "--format", "onnx",
                 "--nms", "--size", SIZE, "--out", str(nms_path)]) == 0
    session = ort.InferenceSession(str(nms_path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["num_dets", "boxes", "scores", "class_ids"]

    # The export predicts through yoloxkit (ONNX Runtime backend).
    picture = sorted((voc / "JPEGImages").glob("*.jpg"))[0]
    results = tmp_path / "onnx.json"
    assert main(["predict", str(picture), "--weights", str(onnx_path), "--no-save", "--json-out", str(results),
                 "--no-progress"]) == 0
    assert json.loads(results.read_text())[0]["image"] == picture.name
