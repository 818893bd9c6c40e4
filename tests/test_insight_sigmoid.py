"""The insight views' engine functions with a sigmoid output (one output unit, binary cross-entropy):
the same answers as independent NumPy computations, as with softmax."""

from __future__ import annotations

import numpy as np
import pytest

from engine.insight.boundary import boundary_grid
from engine.insight.confusion import confusion_matrix, predict_raw, predicted_classes
from engine.network import MLP


def _net(seed=0, dtype="float64"):
    net = MLP([2, 6, 5, 1], "tanh", dtype=dtype, output="sigmoid")
    rng = np.random.default_rng(seed)
    net.initialize("xavier", 1.0, rng)
    for b in net.b:
        b[...] = rng.standard_normal(b.shape) * 0.3
    return net


def _reference_p(net, X):
    """σ(z) of the textbook forward pass: the probability of class 1."""
    a = np.asarray(X, dtype=np.float64)
    for i, (W, b) in enumerate(zip(net.W, net.b)):
        z = a @ W + b
        a = np.tanh(z) if i < net.n_layers - 1 else z
    return 1.0 / (1.0 + np.exp(-a[:, 0]))


def test_predict_proba_and_the_boundary_grid_are_the_sigmoid_probabilities():
    net = _net()
    X = np.random.default_rng(1).standard_normal((40, 2))
    p = _reference_p(net, X)
    np.testing.assert_allclose(net.predict_proba(X), np.column_stack([1 - p, p]), rtol=1e-12, atol=1e-15)
    mean, std = np.array([0.5, -1.0]), np.array([2.0, 0.5])
    probs, xs, ys = boundary_grid(net, mean, std, (-3, 3), (-2, 2), resolution=17)
    gx, gy = np.meshgrid(xs, ys)
    raw = np.column_stack([gx.ravel(), gy.ravel()])
    p = _reference_p(net, (raw - mean) / std).reshape(17, 17)
    np.testing.assert_allclose(probs[..., 1], p, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, rtol=1e-12)


def test_trace_gradients_equal_the_training_gradients_and_finite_differences():
    net = _net()
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 2))
    y = rng.integers(0, 2, 30)
    tr = net.trace(X, y)
    p = _reference_p(net, X)
    expected_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert tr.loss == pytest.approx(expected_loss, rel=1e-12)
    net.loss_and_grad(X, y)
    for i in range(net.n_layers):
        np.testing.assert_allclose(tr.dW[i], net.dW[i], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(tr.db[i], net.db[i], rtol=1e-10, atol=1e-14)
    # one weight by central differences of the textbook loss
    eps = 1e-6
    W = net.W[1]
    W[2, 3] += eps
    up = -np.mean(y * np.log(_reference_p(net, X)) + (1 - y) * np.log(1 - _reference_p(net, X)))
    W[2, 3] -= 2 * eps
    down = -np.mean(y * np.log(_reference_p(net, X)) + (1 - y) * np.log(1 - _reference_p(net, X)))
    W[2, 3] += eps
    assert tr.dW[1][2, 3] == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_confusion_matrix_diagonal_is_the_evaluated_accuracy():
    net = _net(dtype="float32")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 2)).astype(np.float32)
    y = rng.integers(0, 2, 500)
    mean, std = np.zeros(2, np.float32), np.ones(2, np.float32)
    cm = confusion_matrix(y, predicted_classes(predict_raw(net, X, mean, std)), 2)
    _, acc = net.evaluate(X, y)
    assert cm.sum() == 500 and np.trace(cm) / 500 == pytest.approx(acc)
    clone = net.clone()
    assert clone.output == "sigmoid" and net.same_architecture(clone)
    np.testing.assert_array_equal(clone.predict_proba(X), net.predict_proba(X))
