"""Per-layer statistics against independent NumPy computations, without disturbing the network."""

import numpy as np
import pytest

from engine.batches import to_network_input
from engine.insight.layers import PERCENTILES, fixed_batch, layer_statistics
from engine.network import MLP


def _data(n=40, d=3, c=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_relu_statistics_against_hand_computation():
    net = MLP([3, 5, 4, 3], "relu", dtype="float64")
    net.initialize("he", 1.0, np.random.default_rng(0))
    net.b[0][2] = -100.0  # unit 3 of hidden layer 1 never fires: dead
    X, y = _data()
    grads, params = net.grads.copy(), net.params.copy()
    stats = layer_statistics(net, X, y)
    np.testing.assert_array_equal(net.grads, grads)  # the training net is not disturbed
    np.testing.assert_array_equal(net.params, params)

    Z1 = X @ net.W[0] + net.b[0]
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ net.W[1] + net.b[1]
    A2 = np.maximum(Z2, 0)
    Z3 = A2 @ net.W[2] + net.b[2]
    onehot = np.eye(3)[y]
    dZ3 = (_softmax(Z3) - onehot) / len(y)
    dZ2 = (dZ3 @ net.W[2].T) * (Z2 > 0)
    dZ1 = (dZ2 @ net.W[1].T) * (Z1 > 0)

    assert [s.name for s in stats] == ["hidden 1", "hidden 2", "output"]
    for s, A, dZ, prev in zip(stats, (A1, A2, Z3), (dZ1, dZ2, dZ3), (X, A1, A2)):
        assert s.width == A.shape[1]
        assert s.act_mean == pytest.approx(A.mean(), rel=1e-12)
        assert s.act_std == pytest.approx(A.std(), rel=1e-12)
        assert s.act_percentiles == pytest.approx(tuple(np.percentile(A, PERCENTILES)), rel=1e-12, abs=1e-15)
        assert s.grad_norm == pytest.approx(np.linalg.norm(dZ), rel=1e-10)
        assert s.grad_std == pytest.approx(dZ.std(), rel=1e-10)
        assert s.weight_grad_norm == pytest.approx(np.linalg.norm(prev.T @ dZ), rel=1e-10)
    dead1 = np.mean((Z1 <= 0).all(axis=0))
    assert dead1 >= 1 / 5 and stats[0].dead_share == pytest.approx(dead1)
    assert stats[1].dead_share == pytest.approx(np.mean((Z2 <= 0).all(axis=0)))
    assert stats[2].dead_share is None and stats[0].saturated_share is None
    d = stats[0].to_dict()
    assert d["act_percentiles"]["p50"] == pytest.approx(np.median(A1))


def test_weight_gradients_match_the_training_pass():
    net = MLP([3, 6, 3], "leaky_relu", dtype="float64")
    net.initialize("he", 1.0, np.random.default_rng(2))
    X, y = _data(seed=3)
    stats = layer_statistics(net, X, y)
    clone = net.clone()
    clone.loss_and_grad(X, y)
    assert [s.weight_grad_norm for s in stats] == pytest.approx(clone.grad_norms(), rel=1e-10)


def test_tanh_saturation_share():
    net = MLP([3, 8, 2], "tanh", dtype="float64")
    net.initialize("random", 3.0, np.random.default_rng(4))  # large weights: many units saturate
    X, y = _data(c=2, seed=5)
    s = layer_statistics(net, X, y)[0]
    A = np.tanh(X @ net.W[0] + net.b[0])
    expected = np.mean(1 - A**2 < 0.05)  # derivative below 5 % of its maximum 1
    assert expected > 0.1 and s.saturated_share == pytest.approx(expected)
    assert s.dead_share is None


def test_fixed_batch_is_seeded_ordered_and_normalized():
    rng = np.random.default_rng(0)
    X_raw = rng.integers(0, 256, (500, 4, 4, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 500)
    mean, std = np.full(48, 0.5, np.float32), np.full(48, 0.25, np.float32)
    X1, y1 = fixed_batch(X_raw, y, mean, std, n=64, seed=7)
    X2, y2 = fixed_batch(X_raw, y, mean, std, n=64, seed=7)
    np.testing.assert_array_equal(X1, X2)
    assert X1.shape == (64, 48) and X1.dtype == np.float32
    idx = np.sort(np.random.default_rng(7).choice(500, size=64, replace=False))
    np.testing.assert_array_equal(y1, y[idx])
    np.testing.assert_allclose(X1, (X_raw[idx].reshape(64, -1) / 255.0 - 0.5) / 0.25, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(X1, to_network_input(X_raw[idx], mean, std))
    Xs, ys = fixed_batch(X_raw[:10], y[:10], mean, std, n=64)
    assert len(ys) == 10
