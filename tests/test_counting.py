"""Counting tracks across a line (``--count-line``): parsing, exact crossings per class and
direction on hand-made tracks, lost tracks, drawing and the JSON summary."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from yoloxkit.errors import MissingDependencyError, TrackingError
from yoloxkit.infer import Detections
from yoloxkit.tracking import Tracker
from yoloxkit.tracking.counting import CountLine, LineCounter, parse_count_line

NAMES = ["person", "car", "dog"]
HALF = 10.0  # boxes are 20 x 20 px


def _frame(tracks: list[tuple[int, int, float, float]]) -> Detections:
    """Detections of ``(track id, class id, centre x, centre y)`` tuples, in that order."""
    boxes = [[x - HALF, y - HALF, x + HALF, y + HALF] for _, _, x, y in tracks]
    return Detections(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.full(len(tracks), 0.9),
                      [c for _, c, _, _ in tracks], NAMES, width=640, height=480,
                      track_ids=np.asarray([t for t, _, _, _ in tracks], dtype=np.int64))


def _run(counter: LineCounter, frames: list[Detections]) -> list[tuple[list[bool], list[bool]]]:
    return [tuple(a.tolist() for a in counter.update(frame)) for frame in frames]  # type: ignore[misc]


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("10,20,300,20", ((10.0, 20.0), (300.0, 20.0))),
    (" 10 , 20 , 300.5 , 20 ", ((10.0, 20.0), (300.5, 20.0))),
    ("-5,0.25,1e3,7", ((-5.0, 0.25), (1000.0, 7.0))),
])
def test_parse_good_forms(text: str, expected) -> None:
    line = parse_count_line(text)
    assert (line.start, line.end) == expected
    assert isinstance(line, CountLine)


@pytest.mark.parametrize("text", ["10,20,300", "10,20,300,20,5", "a,b,c,d", "nan,0,100,0", "0,inf,100,0",
                                  "50,60,50,60", "", "10,,300,20"])
def test_parse_bad_forms_fail_in_one_line(text: str) -> None:
    with pytest.raises(TrackingError) as info:
        parse_count_line(text)
    message = str(info.value)
    assert message.startswith(f"--count-line must be x1,y1,x2,y2 in pixels, got {text!r}")
    assert "\n" not in message


def test_count_line_itself_refuses_a_point() -> None:
    with pytest.raises(TrackingError, match="two different points"):
        CountLine((3.0, 4.0), (3.0, 4.0))


# --- crossings ------------------------------------------------------------------------------

# A vertical line x = 100, drawn top to bottom: left -> right is "in". Per frame, the centre x of
# each track (all at y = 200): 1 person crosses left->right (straddles at x=100 in frame 2, counts
# in frame 3), 2 car right->left, 3 person crosses and comes back, 4 car approaches and stays on
# its side (its box edge at 98), 5 dog jumps over the line between frames 1 and 2.
XS = {
    1: (0, [60, 80, 100, 120, 140]),
    2: (1, [140, 120, 100, 80, 60]),
    3: (0, [60, 120, 120, 60, 60]),
    4: (1, [40, 60, 85, 88, 85]),
    5: (2, [20, 30, 180, 190, 200]),
}
EXPECTED_IN = [[False] * 5, [False, False, True, False, False], [False, False, False, False, True],
               [True, False, False, False, False], [False] * 5]
EXPECTED_OUT = [[False] * 5, [False] * 5, [False] * 5, [False, True, True, False, False], [False] * 5]


def _vertical_sequence() -> list[Detections]:
    return [_frame([(t, c, xs[k], 200.0) for t, (c, xs) in XS.items()]) for k in range(5)]


def test_known_crossings_exact_per_frame_and_class() -> None:
    counter = LineCounter(parse_count_line("100,0,100,480"), NAMES)
    results = _run(counter, _vertical_sequence())
    assert [r[0] for r in results] == EXPECTED_IN
    assert [r[1] for r in results] == EXPECTED_OUT
    assert counter.counts() == {"person": {"in": 2, "out": 1}, "car": {"in": 0, "out": 1}, "dog": {"in": 1, "out": 0}}
    assert counter.totals() == {"in": 3, "out": 2}


def test_reversed_line_swaps_in_and_out() -> None:
    counter = LineCounter(parse_count_line("100,480,100,0"), NAMES)
    results = _run(counter, _vertical_sequence())
    assert [r[1] for r in results] == EXPECTED_IN
    assert [r[0] for r in results] == EXPECTED_OUT
    assert counter.totals() == {"in": 2, "out": 3}
    assert counter.counts()["dog"] == {"in": 0, "out": 1}


def test_a_line_drawn_left_to_right_counts_upward_as_in() -> None:
    counter = LineCounter(parse_count_line("0,300,640,300"), NAMES)
    _run(counter, [_frame([(1, 0, 100, 350), (2, 1, 400, 250)]), _frame([(1, 0, 100, 250), (2, 1, 400, 350)])])
    assert counter.counts() == {"person": {"in": 1, "out": 0}, "car": {"in": 0, "out": 1}}


def test_diagonal_line() -> None:
    # From (0, 0) to (400, 400): walking down-right, the left-hand (in) side is above the line (y < x).
    counter = LineCounter(CountLine((0.0, 0.0), (400.0, 400.0)), NAMES)
    frames = [
        _frame([(1, 0, 100, 200), (2, 2, 250, 150), (3, 1, 150, 200)]),
        _frame([(1, 0, 150, 150), (2, 2, 200, 200), (3, 1, 170, 200)]),  # 1 and 2 straddle, 3 stays below
        _frame([(1, 0, 200, 100), (2, 2, 150, 250), (3, 1, 175, 200)]),
    ]
    results = _run(counter, frames)
    assert results == [([False] * 3, [False] * 3), ([False] * 3, [False] * 3),
                       ([True, False, False], [False, True, False])]
    assert counter.counts() == {"person": {"in": 1, "out": 0}, "dog": {"in": 0, "out": 1}}


def test_only_the_segment_counts() -> None:
    # The line ends at y = 100; a box crossing x = 100 lower down, or one reaching past the end, is not counted.
    counter = LineCounter(parse_count_line("100,0,100,100"), NAMES)
    _run(counter, [_frame([(1, 0, 60, 300), (2, 0, 60, 95)]), _frame([(1, 0, 140, 300), (2, 0, 140, 95)])])
    assert counter.totals() == {"in": 0, "out": 0}


def test_class_is_the_one_of_the_crossing_frame() -> None:
    counter = LineCounter(parse_count_line("100,0,100,480"), NAMES)
    _run(counter, [_frame([(7, 0, 60, 200)]), _frame([(7, 0, 100, 200)]), _frame([(7, 2, 140, 200)]),
                   _frame([(7, 0, 160, 200)])])
    assert counter.counts() == {"dog": {"in": 1, "out": 0}}


def test_class_ids_beyond_the_names_are_named_by_number() -> None:
    counter = LineCounter(parse_count_line("100,0,100,480"), ["person"])
    _run(counter, [_frame([(1, 5, 60, 200)]), _frame([(1, 5, 140, 200)])])
    assert counter.counts() == {"5": {"in": 1, "out": 0}}


def test_detections_without_track_ids_count_nothing() -> None:
    counter = LineCounter(parse_count_line("100,0,100,480"), NAMES)
    for x in (60, 140, 60):
        frame = _frame([(1, 0, x, 200), (2, 1, 200 - x, 200)])
        frame.track_ids = None
        crossed_in, crossed_out = counter.update(frame)
        assert crossed_in.tolist() == [False, False] and crossed_out.tolist() == [False, False]
    empty = _frame([])
    assert [a.tolist() for a in counter.update(empty)] == [[], []]
    assert counter.totals() == {"in": 0, "out": 0} and counter.counts() == {}


def test_a_track_missing_while_it_crosses_still_counts() -> None:
    frames = [_frame([(1, 0, 60, 200), (2, 1, 300, 300)])] + [_frame([(2, 1, 300, 300)])] * 5
    frames.append(_frame([(2, 1, 300, 300), (1, 0, 140, 200)]))
    counter = LineCounter(parse_count_line("100,0,100,480"), NAMES)
    assert _run(counter, frames)[-1] == ([False, True], [False, False])
    assert counter.counts() == {"person": {"in": 1, "out": 0}}
    for keep_lost, counted in [(1, 0), (4, 0), (5, 1), (6, 1)]:  # missing for 5 frames; 1 = supervision's own
        counter = LineCounter(parse_count_line("100,0,100,480"), NAMES, keep_lost=keep_lost)
        _run(counter, frames)
        assert counter.totals() == {"in": counted, "out": 0}, keep_lost
    short_gap = frames[:1] + frames[-1:]  # next frame: supervision alone counts it
    counter = LineCounter(parse_count_line("100,0,100,480"), NAMES, keep_lost=1)
    assert _run(counter, short_gap)[-1] == ([False, True], [False, False])
    with pytest.raises(TrackingError, match="keep_lost"):
        LineCounter(parse_count_line("100,0,100,480"), NAMES, keep_lost=0)


def test_remembered_tracks_make_no_crossing_of_their_own() -> None:
    counter = LineCounter(parse_count_line("100,0,100,480"), NAMES)
    frames = [_frame([(1, 0, 60, 200), (2, 0, 100, 200)]), _frame([(1, 0, 140, 200), (2, 0, 100, 200)])]
    frames += [_frame([])] * 40  # both vanish: 1 on the right, 2 straddling
    results = _run(counter, frames)
    assert counter.totals() == {"in": 1, "out": 0}
    assert all(r == ([], []) for r in results[2:])


def test_reset_forgets_counts_and_tracks() -> None:
    counter = LineCounter(parse_count_line("100,0,100,480"), NAMES)
    _run(counter, [_frame([(1, 0, 60, 200)]), _frame([(1, 0, 140, 200)])])
    counter.reset()
    assert counter.totals() == {"in": 0, "out": 0} and counter.counts() == {}
    _run(counter, [_frame([(1, 0, 60, 200)])])  # a fresh start on the left: no crossing from before the reset
    assert counter.totals() == {"in": 0, "out": 0}


def test_with_the_tracker() -> None:
    tracker = Tracker(None, tracker="iou")
    counter = LineCounter(parse_count_line("320,0,320,480"), NAMES)
    for step in range(16):
        car, person = 250 + 15 * step, 420 - 12 * step  # one car driving right, one person walking left
        detections = Detections([[car - 20, 100, car + 20, 140], [person, 300, person + 40, 380]],
                                [0.9, 0.8], [1, 0], NAMES, width=640, height=480)
        counter.update(tracker.update_detections(detections))
    assert counter.counts() == {"person": {"in": 0, "out": 1}, "car": {"in": 1, "out": 0}}


def test_missing_supervision_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", None)
    with pytest.raises(MissingDependencyError, match="supervision"):
        LineCounter(parse_count_line("0,0,10,10"), NAMES)


# --- output ---------------------------------------------------------------------------------


def test_to_json_round_trips() -> None:
    counter = LineCounter(parse_count_line("100,0,100,480"), NAMES)
    _run(counter, _vertical_sequence())
    summary = counter.to_json()
    assert json.loads(json.dumps(summary)) == summary
    assert summary == {"line": [100.0, 0.0, 100.0, 480.0], "in": 3, "out": 2,
                       "per_class": {"person": {"in": 2, "out": 1}, "car": {"in": 0, "out": 1},
                                     "dog": {"in": 1, "out": 0}}}


def _distance_to_segment(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    direction = end - start
    t = np.clip(((points - start) @ direction) / (direction @ direction), 0, 1)
    return np.linalg.norm(points - (start + t[:, None] * direction), axis=1)


@pytest.mark.parametrize("background", [0, 255, 128])
@pytest.mark.parametrize("text", ["100,240,540,240", "320,60,320,420", "80,400,560,80"])
def test_draw_marks_only_near_the_line(background: int, text: str) -> None:
    counter = LineCounter(parse_count_line(text), NAMES)
    image = np.full((480, 640, 3), background, dtype=np.uint8)
    before = image.copy()
    drawn = counter.draw(image)
    np.testing.assert_array_equal(image, before)  # the input is untouched
    assert drawn.shape == image.shape and drawn.dtype == image.dtype
    changed = np.argwhere(np.any(drawn != image, axis=2))[:, ::-1].astype(np.float64)  # (x, y)
    line = counter.line
    distance = _distance_to_segment(changed, np.array(line.start), np.array(line.end))
    assert distance.max() < 110  # line, arrow and label: nothing far away
    assert len(changed) < 0.08 * image.shape[0] * image.shape[1]
    on_line = np.linspace(line.start, line.end, 50).round().astype(int)
    assert np.all(np.any(drawn[on_line[:, 1], on_line[:, 0]] != background, axis=1))
    # readable on any background: much of the drawing contrasts strongly with it, and the drawn
    # image has both dark and bright pixels (black outline and label box, yellow line, white text)
    gray = drawn.astype(np.float64).mean(axis=2)
    assert (np.abs(gray - background) > 100).sum() > 500
    assert (gray < 40).sum() > 100 and (gray > 160).sum() > 100


def test_draw_arrow_points_to_the_in_side_and_label_shows_counts() -> None:
    counter = LineCounter(parse_count_line("320,60,320,420"), NAMES)  # in = to the right
    image = np.full((480, 640, 3), 128, dtype=np.uint8)
    first = counter.draw(image)
    changed = np.any(first != image, axis=2)
    assert changed[200:280, 325:380].sum() > 20  # the arrow, on the in side
    assert changed[200:280, 260:315].sum() > 200  # the label, on the out side
    assert not changed[:, 400:].any() and not changed[:, :200].any()
    _run(counter, [_frame([(1, 0, 300, 200)]), _frame([(1, 0, 340, 200)])])
    assert counter.totals()["in"] == 1
    second = counter.draw(image)
    assert np.any(second[:, :315] != first[:, :315])  # the label changed with the count
    assert np.array_equal(second[:, 316:], first[:, 316:])  # the line and arrow did not
