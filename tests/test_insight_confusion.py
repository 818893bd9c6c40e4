"""Confusion matrix counts, cell members, and predictions on raw samples."""

import numpy as np
import pytest

from engine.batches import to_network_input
from engine.insight.confusion import cell_members, confusion_matrix, predict_raw, predicted_classes
from engine.network import MLP


def test_confusion_counts_by_hand():
    y_true = [0, 0, 1, 1, 1, 2, 2, 0]
    y_pred = [0, 1, 1, 1, 2, 2, 0, 0]
    M = confusion_matrix(y_true, y_pred, 3)
    assert M.tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 1]]
    assert M.dtype == np.int64
    assert confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 3)


def test_counts_sum_to_the_set_size_and_the_diagonal_gives_evaluates_accuracy():
    net = MLP([2, 8, 4], "relu")
    net.initialize("he", 2.0, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    net.b[0][...] = rng.standard_normal(8)
    X = rng.standard_normal((500, 2))
    y = rng.integers(0, 4, 500)
    probs = net.predict_proba(X)
    M = confusion_matrix(y, predicted_classes(probs), 4)
    _, acc = net.evaluate(X, y)
    assert M.sum() == 500
    assert np.trace(M) / M.sum() == pytest.approx(acc)
    assert M.sum(axis=1).tolist() == np.bincount(y, minlength=4).tolist()  # rows: true classes


def test_cell_members_are_that_cell_most_confident_first():
    probs = np.array(
        [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.1, 0.9], [0.45, 0.55]], dtype=np.float32
    )
    y = np.array([0, 0, 0, 1, 1, 0])
    cell = cell_members(y, probs, true_class=0, pred_class=1)  # class 0 predicted as 1
    assert cell.indices.tolist() == [1, 2, 5]  # confidences 0.8, 0.6, 0.55
    np.testing.assert_array_equal(cell.probs, probs[[1, 2, 5]])
    np.testing.assert_allclose(cell.confidence, [0.8, 0.6, 0.55])
    assert cell_members(y, probs, 0, 1, limit=2).indices.tolist() == [1, 2]
    assert cell_members(y, probs, 1, 0).indices.tolist() == [3]
    assert cell_members(y, probs, 1, 1).indices.tolist() == [4]
    M = confusion_matrix(y, predicted_classes(probs), 2)
    for t in range(2):
        for p in range(2):
            assert len(cell_members(y, probs, t, p).indices) == M[t, p]
    with pytest.raises(ValueError):
        cell_members(y, probs, 0, 2)


def test_predict_raw_normalizes_as_evaluation_does():
    net = MLP([12, 5, 3], "relu")
    net.initialize("he", 1.0, np.random.default_rng(0))
    rng = np.random.default_rng(2)
    X_raw = rng.integers(0, 256, (50, 2, 2, 3), dtype=np.uint8)
    mean, std = np.full(12, 0.4, np.float32), np.full(12, 0.3, np.float32)
    probs = predict_raw(net, X_raw, mean, std, chunk_size=16)  # several chunks
    expected = net.predict_proba(to_network_input(X_raw, mean, std))
    np.testing.assert_allclose(probs, expected, atol=1e-6)
