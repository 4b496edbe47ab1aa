"""The generated tracking sequences (yoloxkit.synth.sequences): MOTChallenge layout, camera maths,
ground truth that follows the pixels (moving cut-outs, occluder, objects entering and leaving),
determinism, and the make-tracking-set command."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from data_synth import make_coco
from yoloxkit.cli import main
from yoloxkit.data.mot_sequence import read_seqinfo, sequence_frames
from yoloxkit.errors import DatasetError, YoloxkitError
from yoloxkit.synth import cut_out_objects, make_tracking_set, read_source
from yoloxkit.synth.sequence_render import (box_visibility, camera_path, clip_box, fit_window, map_box,
                                            render_sequence, window_matrix)
from yoloxkit.synth.sequences import plan_sequence, usable_backgrounds

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools, numpy 2

SIZE = (320, 240)
FRAMES = 8
OPTIONS = dict(sequences=2, frames=FRAMES, frame_size=SIZE, progress=False)  # SYN-01 pans, SYN-02 zooms in


def _gt(path):
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert all(len(r) == 9 for r in rows)
    return np.array([[float(v) for v in r] for r in rows]).reshape(-1, 9)


@pytest.fixture(scope="module")
def made(coco_mini, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracking") / "set"
    return make_tracking_set(coco_mini, "val2017", out, seed=0, **OPTIONS)


@pytest.fixture(scope="module")
def source(coco_mini):
    data = read_source(coco_mini, "val2017")
    return data, cut_out_objects(data, min_area=40 * 40), usable_backgrounds(data, 0)


def test_layout_seqinfo_and_ground_truth_rows(made):
    out = made.out
    assert (out / "seqmap.txt").read_text() == "name\nSYN-01\nSYN-02\n"
    assert made.sequences == ("SYN-01", "SYN-02") and made.frames == FRAMES
    info = json.loads((out / "tracking_set.json").read_text())
    assert info["split"] == "val2017" and info["seed"] == 0 and info["frame_size"] == list(SIZE)
    assert [s["camera"] for s in info["sequences"]] == ["pan", "zoom-in"]
    assert len({s["background_id"] for s in info["sequences"]}) == 2
    total_rows, total_ids = 0, 0
    for seq in info["sequences"]:
        seq_dir = out / seq["name"]
        assert read_seqinfo(seq_dir) == {"name": seq["name"], "frame_rate": 30.0, "length": FRAMES, "width": SIZE[0],
                                         "height": SIZE[1], "im_dir": "img1", "im_ext": ".jpg"}
        frames = sequence_frames(seq_dir)
        assert [p.name for p in frames] == [f"{k:06d}.jpg" for k in range(1, FRAMES + 1)]
        assert all(cv2.imread(str(p)).shape == (SIZE[1], SIZE[0], 3) for p in frames)
        gt = _gt(seq_dir / "gt" / "gt.txt")
        frame, ids = gt[:, 0].astype(int), gt[:, 1].astype(int)
        assert len(gt) and frame.min() >= 1 and frame.max() <= FRAMES and ids.min() >= 1
        assert len({(f, i) for f, i in zip(frame, ids)}) == len(gt)
        assert list(zip(frame, ids)) == sorted(zip(frame, ids))
        x, y, w, h, mark, cls, vis = gt[:, 2:].T
        assert np.all(x >= 0) and np.all(y >= 0) and np.all(x + w <= SIZE[0] + 0.01) and np.all(y + h <= SIZE[1] + 0.01)
        assert np.all(w >= 4) and np.all(h >= 4) and np.all(cls == 1) and np.all((vis >= 0) & (vis <= 1))
        assert np.array_equal(mark == 0, vis < 0.25)  # mark 0 is MOTChallenge's "ignore", only for low visibility
        assert sorted(set(ids)) == list(range(1, seq["ids"] + 1)) and seq["rows"] == len(gt)
        assert [o["id"] for o in seq["objects"]] == list(range(1, seq["ids"] + 1))
        moving = {o["annotation_id"] for o in seq["objects"] if o["kind"] == "moving"}
        assert moving <= set(seq["moving_annotation_ids"]) and seq["occluder"] is not None
        total_rows, total_ids = total_rows + len(gt), total_ids + seq["ids"]
    assert (made.rows, made.identities) == (total_rows, total_ids)
    assert made.describe().startswith(f"wrote 2 sequences (SYN-01..SYN-02) of {FRAMES} frames at 320x240")


def test_objects_enter_and_leave_a_panning_sequence(made):
    gt = _gt(made.out / "SYN-01" / "gt" / "gt.txt")
    first = {int(i): int(gt[gt[:, 1] == i, 0].min()) for i in set(gt[:, 1])}
    last = {int(i): int(gt[gt[:, 1] == i, 0].max()) for i in set(gt[:, 1])}
    assert any(f > 1 for f in first.values()) and any(f < FRAMES for f in last.values())
    for i in first:  # every track is one unbroken run: an object that left does not come back
        assert set(gt[gt[:, 1] == i, 0].astype(int)) == set(range(first[i], last[i] + 1))


def test_same_seed_same_files_other_seed_other_truth(made, coco_mini, tmp_path):
    again = make_tracking_set(coco_mini, "val2017", tmp_path / "again", seed=0, **OPTIONS)
    for name in made.sequences:
        assert (again.out / name / "gt" / "gt.txt").read_bytes() == (made.out / name / "gt" / "gt.txt").read_bytes()
        for path in sequence_frames(made.out / name):
            assert (again.out / name / "img1" / path.name).read_bytes() == path.read_bytes()
    other = make_tracking_set(coco_mini, "val2017", tmp_path / "other", seed=1, **OPTIONS)
    assert (other.out / "SYN-01" / "gt" / "gt.txt").read_bytes() != (made.out / "SYN-01" / "gt" / "gt.txt").read_bytes()


def test_camera_windows_and_box_maths():
    rng = np.random.default_rng(0)
    assert fit_window((640, 480), (320, 240)) == (640.0, 480.0)
    assert fit_window((480, 640), (320, 240)) == (480.0, 360.0)
    assert fit_window((640, 427), (320, 240)) == pytest.approx((569.333, 427.0), abs=1e-3)
    for image in ((640, 480), (480, 640), (640, 427)):
        for kind in ("pan", "zoom-in", "zoom-out", "pan-zoom"):
            for x0, y0, w, h in camera_path(kind, image, SIZE, 9, rng):
                assert x0 >= -1e-9 and y0 >= -1e-9 and x0 + w <= image[0] + 1e-9 and y0 + h <= image[1] + 1e-9
                assert w / h == pytest.approx(SIZE[0] / SIZE[1])
    # a pan: fixed size and height, the window slides from one side of the image to the other at constant speed
    pan = np.array(camera_path("pan", (640, 480), SIZE, 5, rng))
    w = pan[0, 2]
    assert 0.55 * 640 <= w <= 0.70 * 640 and np.all(pan[:, 2:] == pan[0, 2:]) and np.all(pan[:, 1] == pan[0, 1])
    assert sorted([pan[0, 0], pan[-1, 0]]) == pytest.approx([0, 640 - w])
    assert np.allclose(np.diff(pan[:, 0], 2), 0)  # constant speed
    box = (300.0, 200.0, 340.0, 260.0)
    mapped = np.array([map_box(box, window, SIZE) for window in pan])
    scale = SIZE[0] / w
    assert mapped[0] == pytest.approx([(300 - pan[0, 0]) * scale, (200 - pan[0, 1]) * scale,
                                       (340 - pan[0, 0]) * scale, (260 - pan[0, 1]) * scale])
    assert np.allclose(mapped[:, 2] - mapped[:, 0], 40 * scale) and np.allclose(np.diff(mapped[:, 0], 2), 0)
    assert map_box((100, 50, 260, 170), (100, 50, 160, 120), (320, 240)) == (0, 0, 320, 240)
    # zoom-in: the window shrinks from ~95% to ~55%, so boxes grow by the same factor
    zoom = np.array(camera_path("zoom-in", (640, 480), SIZE, 6, rng))
    assert 0.9 * 640 <= zoom[0, 2] <= 640 and 0.5 * 640 <= zoom[-1, 2] <= 0.6 * 640 and np.all(np.diff(zoom[:, 2]) < 0)
    widths = [map_box(box, window, SIZE)[2] - map_box(box, window, SIZE)[0] for window in zoom]
    assert widths == pytest.approx([40 * SIZE[0] / window[2] for window in zoom])
    out = np.array(camera_path("zoom-out", (640, 480), SIZE, 6, rng))
    assert np.all(np.diff(out[:, 2]) > 0) and 0.5 * 640 <= out[0, 2] <= 0.6 * 640 and out[-1, 2] >= 0.9 * 640
    # clipping, and visibility from a coverage map
    assert clip_box((-10, 5, 20, 300), SIZE) == (0, 5, 20, 240)
    covered = np.zeros((240, 320), bool)
    assert box_visibility((10, 10, 30, 30), covered) == ((10, 10, 30, 30), 1.0, 1.0)
    covered[:, 20:30] = True
    assert box_visibility((10, 10, 30, 30), covered) == ((10, 10, 30, 30), 1.0, 0.5)
    clipped, inside, visible = box_visibility((-20, 10, 20, 30), covered)
    assert clipped == (0, 10, 20, 30) and inside == 0.5 and visible == 0.5
    assert box_visibility((400, 10, 420, 30), covered)[1:] == (0.0, 0.0)


@pytest.mark.parametrize("window", [(150.0, 80.0, 320.0, 240.0), (150.5, 80.25, 400.0, 300.0)])
def test_the_warp_draws_what_the_box_map_says(window):
    image = np.zeros((480, 640, 3), np.uint8)
    image[100:180, 200:260] = 255
    frame = cv2.warpAffine(image, window_matrix(window, (640, 480)), (640, 480), flags=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(frame[..., 0] >= 128)
    expected = map_box((200, 100, 260, 180), window, (640, 480))
    assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == pytest.approx(expected, abs=1.0)


def test_moving_cutout_boxes_are_where_its_pixels_were_pasted(source):
    data, cutouts, backgrounds = source
    plan = plan_sequence(data, backgrounds[0], cutouts, 0, 0, 12, (256, 192), (1, 1), occluders=False)
    [mover] = plan.movers
    bare = replace(plan, movers=())
    scene, with_row = len(plan.scene), []
    for k, ((frame, rows), (base, base_rows)) in enumerate(zip(render_sequence(plan), render_sequence(bare))):
        assert [r[:2] for r in rows if r[0] < scene] == [r[:2] for r in base_rows]  # scene boxes do not move
        changed = (frame != base).any(axis=2)
        found = [r for r in rows if r[0] == scene]
        x, y = mover.corner(k)
        ph, pw = mover.cutout.mask.shape
        in_frame = np.zeros((192, 256), bool)  # where its mask lands, clipped to the frame
        x1, y1, x2, y2 = max(0, x), max(0, y), min(256, x + pw), min(192, y + ph)
        if x2 > x1 and y2 > y1:
            in_frame[y1:y2, x1:x2] = mover.cutout.mask[y1 - y:y2 - y, x1 - x:x2 - x]
        if found:
            [(_, box, visible)] = found
            ys, xs = np.nonzero(changed)
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == pytest.approx(box, abs=1.0)
            assert not (changed & ~in_frame).any() and changed.sum() >= 0.9 * in_frame.sum()
            assert visible == pytest.approx(in_frame.sum() / mover.cutout.mask.sum())  # nothing in front of it
            with_row.append(k)
        else:  # outside, or mostly outside the frame
            inside = max(0, min(256, x + pw) - max(0, x)) * max(0, min(192, y + ph) - max(0, y))
            assert inside < 0.4 * pw * ph
    assert with_row and with_row == list(range(with_row[0], with_row[-1] + 1))  # enters once, leaves once
    assert 0 < with_row[0] or with_row[-1] < 11


def test_the_occluder_hides_what_passes_behind_it(source, made):
    data, cutouts, backgrounds = source
    plan = plan_sequence(data, backgrounds[0], cutouts, 0, 0, 8, (256, 192), (1, 2), occluders=True)
    assert plan.kind == "pan" and plan.occluder.x_start == plan.occluder.x_end  # a static pillar
    lower = 0
    for (frame, rows), (_, clear) in zip(render_sequence(plan), render_sequence(replace(plan, occluder=None))):
        c1, c2 = plan.occluder.columns(0.0, 256)
        assert set(map(tuple, frame[:, c1:c2].reshape(-1, 3))) <= set(plan.occluder.colours)  # drawn on top
        seen = {obj: v for obj, _, v in clear}
        for obj, _, visible in rows:
            assert visible <= seen[obj] + 1e-9
            lower += visible < seen[obj] - 1e-6
    assert lower > 0
    gt = np.concatenate([_gt(made.out / name / "gt" / "gt.txt") for name in made.sequences])
    assert np.any(gt[:, 8] < 1) and np.all(gt[gt[:, 6] == 0, 8] < 0.25)


def test_read_seqinfo_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="seqinfo.ini: sequence info file not found"):
        read_seqinfo(tmp_path)
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=A\nframeRate=30\nimWidth=64\nimHeight=64\n")
    with pytest.raises(DatasetError, match=r"seqinfo.ini: malformed seqinfo.ini \(missing 'seqLength'\)"):
        read_seqinfo(tmp_path)
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=A\nframeRate=30\nseqLength=x\nimWidth=64\nimHeight=64\n")
    with pytest.raises(DatasetError, match="malformed"):
        read_seqinfo(tmp_path)
    (tmp_path / "seqinfo.ini").write_text("no section\n")
    with pytest.raises(DatasetError, match="malformed") as info:
        read_seqinfo(tmp_path)
    assert "\n" not in str(info.value)


def test_bad_arguments_raise_one_line_errors(coco_mini, tmp_path):
    for bad, match in [(dict(sequences=0), "sequences must be"), (dict(frames=1), "frames must be"),
                       (dict(frame_size=(32, 240)), "frame_size: 32x240"),
                       (dict(moving_objects=(3, 1)), "moving_objects")]:
        with pytest.raises(YoloxkitError, match=match) as info:
            make_tracking_set(coco_mini, "val2017", tmp_path / "out", **bad)
        assert "\n" not in str(info.value)
    tiny = make_coco(tmp_path / "tiny", "val2017", {"a.jpg": [(0, 5, 5, 20, 20)]}, ["cat"])
    with pytest.raises(DatasetError, match=f"{tiny}: split val2017 has no image with a non-crowd object"):
        make_tracking_set(tiny, "val2017", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_set_and_rejects_bad_arguments(coco_mini, tmp_path, capsys):
    out = tmp_path / "set"
    args = ["make-tracking-set", "--source", str(coco_mini), "--out", str(out), "--sequences", "1", "--frames", "3",
            "--frame-size", "160x120", "--moving-objects", "1-1", "--no-occluders", "--seed", "3", "--no-progress"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("wrote 1 sequences (SYN-01..SYN-01) of 3 frames at 160x120")
    assert len(sequence_frames(out / "SYN-01")) == 3 and (out / "SYN-01" / "gt" / "gt.txt").is_file()
    assert json.loads((out / "tracking_set.json").read_text())["sequences"][0]["occluder"] is None
    assert main(args) == 2  # --out is not empty now
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: out {out} exists and is not an empty directory")
    assert main([*args[:4], str(tmp_path / "new"), "--frames", "1", "--no-progress"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: frames must be in 2..")
    for bad in (["--frame-size", "160x120,320x240"], ["--moving-objects", "3-1"]):
        with pytest.raises(SystemExit) as info:
            main([*args[:4], str(tmp_path / "new"), *bad])
        assert info.value.code == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("yoloxkit make-tracking-set: error: argument")
