"""Label placement: no label covers another, every label stays in the image and near its box."""

import itertools

import cv2
import numpy as np
import pytest

from yoloxkit.infer import Detector
from yoloxkit.infer.draw import class_color, draw_detections, label_rectangles, place_labels


def _overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _assert_disjoint_and_inside(rects, width, height):
    for a, b in itertools.combinations(rects, 2):
        assert not _overlaps(a, b), (a, b)
    for x1, y1, x2, y2 in rects:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


@pytest.fixture(scope="module")
def demo(dog_jpg):
    image = cv2.imread(str(dog_jpg))
    [det] = Detector()(image)
    return image, det


def test_demo_labels_do_not_cover_each_other(demo):
    image, det = demo
    assert {"dog", "cat", "car", "truck", "bicycle"} <= set(det.class_names)  # the colliding pairs are there
    height, width = image.shape[:2]
    rects = label_rectangles(image.shape, det.boxes, det.scores, det.class_ids, det.names)
    assert len(rects) == len(det)
    _assert_disjoint_and_inside(rects, width, height)
    for (x1, y1, x2, y2), (bx1, by1, bx2, by2) in zip(rects, det.boxes.tolist()):
        label_h = y2 - y1
        assert bx1 - 1 <= x1 and x2 <= bx2 + 1  # along the box
        assert by1 - 2 * label_h - 1 <= y1 and y2 <= by1 + label_h + 1  # at its top edge


def test_every_demo_label_is_visible_in_the_picture(demo):
    """The corner of each label's background shows that label's colour: nothing is drawn over it."""
    image, det = demo
    canvas = draw_detections(image, det.boxes, det.scores, det.class_ids, det.names)
    rects = label_rectangles(image.shape, det.boxes, det.scores, det.class_ids, det.names)
    for (x1, y1, x2, y2), class_id in zip(rects, det.class_ids.tolist()):
        assert tuple(int(v) for v in canvas[y1, x2 - 1]) == class_color(class_id)


def test_identical_boxes_stack_their_labels():
    boxes = np.array([[100, 100, 300, 300]] * 6, dtype=np.float32)
    rects = place_labels(boxes, [(80, 20)] * 6, (640, 480))
    _assert_disjoint_and_inside(rects, 640, 480)
    assert rects[0] == (100, 80, 180, 100)  # the first takes the place above the box
    assert rects[1] == (220, 80, 300, 100)  # the next, above it on the right


def test_labels_stay_inside_the_image():
    # Boxes touching the top, the left, the right and the bottom edge; one label wider than the image.
    boxes = [[0, 0, 50, 40], [590, 0, 640, 60], [0, 440, 30, 480], [600, 450, 640, 480], [10, 10, 630, 470]]
    sizes = [(60, 20), (70, 20), (60, 20), (90, 20), (700, 20)]
    rects = place_labels(boxes, sizes, (640, 480))
    assert rects[0] == (0, 0, 60, 20)  # no room above: inside the top
    for x1, y1, x2, y2 in rects[:4]:
        assert 0 <= x1 and x2 <= 640 and 0 <= y1 and y2 <= 480
    _assert_disjoint_and_inside(rects[:4], 640, 480)
    assert rects[4][0] == 0  # too wide: starts at the left edge


def test_more_labels_than_room_still_places_every_label():
    boxes = [[0, 0, 40, 20]] * 30
    rects = place_labels(boxes, [(40, 20)] * 30, (40, 60))
    assert len(rects) == 30 and all(0 <= r[1] and r[3] <= 60 for r in rects)
    assert len(set(rects[:3])) == 3  # the three free rows are used first


def test_order_gives_the_first_choice():
    boxes = [[100, 100, 200, 200], [100, 100, 200, 200]]
    rects = place_labels(boxes, [(50, 20), (50, 20)], (400, 400), order=[1, 0])
    assert rects[1] == (100, 80, 150, 100) and rects[0] != rects[1]
    with pytest.raises(ValueError, match="label sizes"):
        place_labels(boxes, [(50, 20)], (400, 400))
