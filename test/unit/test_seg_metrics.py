"""Segmentation scores against hand-computed confusion matrices."""

import math

import numpy as np
import pytest
import torch

from snn_perception.offline.seg_metrics import ConfusionMatrix


def test_hand_computed_scores():
    target = torch.tensor([0, 0, 1, 1, 2, 2, 255])
    pred = torch.tensor([0, 1, 1, 1, 2, 0, 2])  # the ignored pixel is not counted
    cm = ConfusionMatrix(3)
    cm.update(pred, target)
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    s = cm.scores(["a", "b", "c"])
    # IoU a = 1/(1+1+1), b = 2/(2+1), c = 1/(1+1)
    assert s["per_class_iou"] == pytest.approx({"a": 1 / 3, "b": 2 / 3, "c": 1 / 2})
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert s["pixel_acc"] == pytest.approx(4 / 6)
    assert s["per_class_f1"]["a"] == pytest.approx(2 * 1 / (2 + 1 + 1))
    assert s["pixels"] == 6


def test_classes_absent_everywhere_are_left_out_of_the_mean():
    cm = ConfusionMatrix(4)
    cm.update(np.array([[0, 1], [1, 0]]), np.array([[0, 1], [1, 0]]))
    s = cm.scores()
    assert s["miou"] == 1.0
    assert s["per_class_iou"]["3"] is None and not math.isnan(s["mean_f1"])


def test_accumulates_over_batches_and_checks_shapes():
    cm = ConfusionMatrix(2)
    cm.update(torch.zeros(2, 3, 3, dtype=torch.long), torch.zeros(2, 3, 3, dtype=torch.long))
    cm.update(torch.ones(4), torch.zeros(4))
    assert cm.matrix.tolist() == [[18, 4], [0, 0]]
    with pytest.raises(ValueError, match="pixels"):
        cm.update(torch.zeros(3), torch.zeros(4))


def test_the_confusion_matrix_counts_only_pixels_whose_ids_are_both_classes() -> None:
    """Training's running ConfusionMatrix and replay's per-frame confusion_matrix are one rule:
    only pixels whose reference and prediction are both class ids count (255 = ignore, and a
    stray prediction id, are left out; the running one once clamped the prediction)."""
    import numpy as np

    from snn_perception.offline.seg_metrics import ConfusionMatrix, confusion_matrix

    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (6, 7))
    pred = rng.integers(0, 4, (6, 7))
    target[0, :3] = 255
    pred[1, :2] = 9  # not a class
    brute = np.zeros((3, 3), np.int64)
    for t, p in zip(target.ravel(), pred.ravel(), strict=True):
        if t < 3 and p < 3:
            brute[t, p] += 1
    running = ConfusionMatrix(3)
    running.update(pred, target)
    assert np.array_equal(running.matrix, brute)
    assert np.array_equal(confusion_matrix(pred, target, 3), brute)
    with pytest.raises(ValueError, match="shapes differ"):
        confusion_matrix(pred, target.T, 3)
