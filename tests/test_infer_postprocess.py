"""Post-processing: best class per anchor, confidence filter, class-aware NMS, mapping to image pixels."""

import numpy as np
import pytest
import torch

from yoloxkit.infer.postprocess import class_aware_nms, postprocess, select_candidates


def _row(cx, cy, w, h, obj, cls):
    return [cx, cy, w, h, obj, *cls]


@pytest.fixture
def hand_made():
    rows = [
        _row(50, 50, 20, 20, 0.9, [0.1, 0.8, 0.2]),  # class 1, score 0.72
        _row(52, 50, 20, 20, 0.8, [0.1, 0.7, 0.1]),  # class 1, 0.56, overlaps the first: suppressed
        _row(52, 50, 20, 20, 0.9, [0.0, 0.1, 0.6]),  # class 2, 0.54, same place, other class: kept
        _row(100, 100, 10, 10, 0.1, [0.9, 0.0, 0.0]),  # 0.09: under conf
        _row(5, 5, 20, 20, 1.0, [0.5, 0.0, 0.0]),  # class 0, 0.5, sticks out of the image: clipped
    ]
    return torch.tensor([rows], dtype=torch.float32)


def test_hand_made_case(hand_made):
    [(boxes, scores, class_ids)] = postprocess(hand_made, [2.0], [(40, 60)], conf=0.25, nms=0.45)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and class_ids.dtype == np.int64
    np.testing.assert_allclose(scores, [0.72, 0.54, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(class_ids, [1, 2, 0])
    np.testing.assert_allclose(boxes, [[20, 20, 30, 30], [21, 20, 31, 30], [0, 0, 7.5, 7.5]], atol=1e-5)


def test_nms_is_class_aware():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep = class_aware_nms(boxes, scores, torch.tensor([0, 0, 1]), 0.5)
    assert keep.tolist() == [0, 2]  # the second box overlaps the first of its own class only
    keep = class_aware_nms(boxes, scores, torch.tensor([0, 1, 2]), 0.5)
    assert keep.tolist() == [0, 1, 2]


def test_conf_threshold_is_inclusive_and_classes_filter(hand_made):
    candidates = select_candidates(hand_made, conf=0.5)
    assert candidates.scores.numel() == 4  # 0.72, 0.56, 0.54 and exactly 0.5
    only = select_candidates(hand_made, conf=0.25, classes=[2, 0])
    assert sorted(only.class_ids.tolist()) == [0, 2]
    [(boxes, _, ids)] = postprocess(hand_made, [1.0], [(500, 500)], conf=0.25, nms=0.45, classes=[1])
    assert ids.tolist() == [1] and len(boxes) == 1


def test_empty_and_batched_results_do_not_depend_on_the_batch(hand_made):
    empty = torch.zeros_like(hand_made)
    batch = torch.cat([hand_made, empty, hand_made])
    results = postprocess(batch, [2.0, 1.0, 1.0], [(40, 60), (10, 10), (500, 500)], conf=0.25, nms=0.45)
    alone = postprocess(hand_made, [2.0], [(40, 60)], conf=0.25, nms=0.45)[0]
    for got, expected in zip(results[0], alone):
        np.testing.assert_array_equal(got, expected)
    assert [len(r[0]) for r in results] == [3, 0, 3]
    assert results[1][0].shape == (0, 4)


def test_matches_reference_postprocess_on_random_predictions():
    from yolox.utils import postprocess as reference_postprocess

    gen = torch.Generator().manual_seed(0)
    batch, anchors, classes = 2, 3000, 80
    preds = torch.rand(batch, anchors, 5 + classes, generator=gen)
    preds[..., :2] *= 400
    preds[..., 2:4] = preds[..., 2:4] * 80 + 4
    preds[..., 5:] **= 4  # a few confident classes per anchor
    expected = reference_postprocess(preds.clone(), classes, 0.3, 0.5)
    ours = postprocess(preds, [1.0] * batch, [(10**5, 10**5)] * batch, conf=0.3, nms=0.5)
    for ref, (boxes, scores, ids) in zip(expected, ours):
        ref = ref.numpy()
        ref[:, :4] = ref[:, :4].clip(0, None)  # ours are clipped to the image
        assert len(ref) == len(scores) > 10
        order = np.lexsort((ref[:, 3], ref[:, 2], ref[:, 1], ref[:, 0], ref[:, 6]))
        ours_order = np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], ids))
        np.testing.assert_allclose(boxes[ours_order], ref[order, :4], atol=1e-4)
        np.testing.assert_allclose(scores[ours_order], (ref[:, 4] * ref[:, 5])[order], rtol=1e-6)
        np.testing.assert_array_equal(ids[ours_order], ref[order, 6].astype(np.int64))


def test_rejects_badly_shaped_predictions():
    with pytest.raises(ValueError):
        postprocess(torch.zeros(10, 85), [1.0], [(10, 10)])
