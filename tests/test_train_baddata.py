"""Bad training data never crashes mid-epoch: it is repaired with counted warnings, or training
stops before the first iteration with a message naming the file."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.train_subset import one_thread
from yoloxkit.engine.config import TrainConfig
from yoloxkit.engine.trainer import Trainer
from yoloxkit.errors import YoloxkitError


def _dataset(coco_mini, root, edit):
    source = json.loads((coco_mini / "annotations" / "instances_train2017.json").read_text())
    images = source["images"][:4]
    keep = {im["id"] for im in images}
    anns = [a for a in source["annotations"] if a["image_id"] in keep and not a.get("iscrowd")]
    (root / "train2017").mkdir(parents=True)
    for im in images:
        shutil.copy(coco_mini / "train2017" / im["file_name"], root / "train2017" / im["file_name"])
    doc = {"images": images, "annotations": anns, "categories": source["categories"]}
    edit(doc, root)
    (root / "annotations").mkdir(exist_ok=True)
    path = root / "annotations" / "instances_train2017.json"
    path.write_text(json.dumps(doc))
    return path


def _train(data, out, log):
    cfg = TrainConfig(
        data=str(data), model="yolox-nano", epochs=1, batch_size=4, size=128, workers=0, device="cpu",
        eval_interval=0, warmup_epochs=0, no_aug_epochs=0, out=str(out), tensorboard=False, progress=False,
        plots=False, mosaic_prob=1.0,
    )
    with one_thread():
        return Trainer(cfg, log=log).fit()


def test_broken_boxes_and_corrupt_image_are_repaired_with_counted_warnings(coco_mini, tmp_path, caplog):
    def edit(doc, root):
        first, second = doc["annotations"][0], doc["annotations"][1]
        first["bbox"] = [10, 10, 0, 5]  # zero width
        second["bbox"] = [-30, -20, 5000, 4000]  # reaching far outside the image
        corrupt = root / "train2017" / doc["images"][3]["file_name"]
        corrupt.write_bytes(corrupt.read_bytes()[:600])  # truncated JPEG

    data = tmp_path / "data"
    _dataset(coco_mini, data, edit)
    messages: list[str] = []
    with caplog.at_level("WARNING"):
        result = _train(data, tmp_path / "out", messages.append)
    assert result.iterations == 1 and (tmp_path / "out" / "last.pth").is_file()
    text = "\n".join(messages + [r.getMessage() for r in caplog.records])
    assert "clipped" in text and "dropped" in text
    assert len([line for line in text.splitlines() if "clipped" in line]) == 1, text  # said once, not twice
    assert any(word in text for word in ("000000", ".jpg")), text  # the corrupt image is named
    summary = (tmp_path / "out" / "results.txt").read_text()
    assert "skipped: 1 unreadable train image" in summary


@pytest.mark.parametrize(
    "case",
    ["unknown_class", "negative_box", "empty_file"],
)
def test_fatal_problems_stop_before_the_first_iteration_naming_the_file(coco_mini, tmp_path, case):
    def edit(doc, root):
        if case == "unknown_class":
            doc["annotations"][0]["category_id"] = 999
        if case == "negative_box":
            doc["annotations"][0]["bbox"] = [50, 50, -10, 20]

    data = tmp_path / "data"
    ann = _dataset(coco_mini, data, edit)
    if case == "empty_file":
        ann.write_text("")
    iterations = []
    with pytest.raises(YoloxkitError, match="instances_train2017.json"):
        cfg_out = tmp_path / "out"
        cfg = TrainConfig(data=str(data), model="yolox-nano", epochs=1, batch_size=4, size=128, workers=0,
                          device="cpu", eval_interval=0, out=str(cfg_out), tensorboard=False, progress=False)
        Trainer(cfg, log=lambda m: None, on_iteration_end=iterations.append).fit()
    assert iterations == [] and not (tmp_path / "out" / "last.pth").exists()
