"""MLP additions for the insight views: predict_proba with reusable buffers, trace, clone; softmax_into."""

import warnings

import numpy as np
import pytest

from engine.losses import softmax, softmax_into
from engine.network import MLP

ACTS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "linear": lambda z: z,
}
DERIVS = {
    "relu": lambda z: (z > 0).astype(float),
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "sigmoid": lambda z: ACTS["sigmoid"](z) * (1.0 - ACTS["sigmoid"](z)),
    "linear": lambda z: np.ones_like(z),
}


def _net(sizes, activation, dtype="float64", seed=0, bias=0.3):
    net = MLP(sizes, activation, dtype=dtype)
    rng = np.random.default_rng(seed)
    net.initialize("he", 1.0, rng)
    for b in net.b:  # non-zero biases, so the bias folding of ReLU layers is exercised
        b[...] = rng.standard_normal(b.shape) * bias
    return net


def _reference_probs(net, X):
    """Textbook forward pass in float64 with plain NumPy, then a per-row softmax."""
    a = np.asarray(X, dtype=np.float64)
    f = ACTS[net.activation]
    for i, (W, b) in enumerate(zip(net.W, net.b)):
        z = a @ W.astype(np.float64) + b.astype(np.float64)
        a = f(z) if i < net.n_layers - 1 else z
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("activation", sorted(ACTS))
def test_predict_proba_equals_the_textbook_forward_pass(activation):
    net = _net([3, 7, 5, 4], activation)
    X = np.random.default_rng(1).standard_normal((50, 3)) * 2
    np.testing.assert_allclose(net.predict_proba(X), _reference_probs(net, X), rtol=1e-12, atol=1e-15)


def test_predict_proba_float32_with_out_workspace_and_chunks():
    net = _net([2, 16, 16, 3], "relu", dtype="float32")
    X = np.random.default_rng(2).standard_normal((9000, 2)).astype(np.float32)  # > one 4096-row chunk
    ws = net.inference_workspace()
    out = np.full((9000, 3), np.nan, dtype=np.float32)
    got = net.predict_proba(X, out=out, workspace=ws)
    assert got is out
    np.testing.assert_allclose(out, _reference_probs(net, X), atol=2e-6)
    again = net.predict_proba(X[:10], workspace=ws)  # the same workspace serves a smaller call
    np.testing.assert_allclose(again, out[:10], atol=1e-7)  # BLAS may sum a 10-row product differently
    np.testing.assert_array_equal(net.predict_proba(X.astype(np.float64)), out)  # inputs cast to float32
    with pytest.raises(ValueError):
        net.predict_proba(X, out=np.empty((9000, 2), np.float32))
    with pytest.raises(ValueError):
        net.predict_proba(X, workspace=MLP([2, 4, 3]).inference_workspace())


def test_predict_proba_stays_finite_with_a_huge_dead_unit():
    # hidden unit 0 is dead with a bias of -1e30: its 0 activation times 1e10 must stay 0 (no overflow)
    net = MLP([1, 2, 2], "relu", dtype="float32")
    net.W[0][...] = [[1.0, 1.0]]
    net.b[0][...] = [-1e30, 0.0]
    net.W[1][...] = [[1e10, -1e10], [1.0, -1.0]]
    X = np.array([[0.5], [-0.5], [2.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = net.predict_proba(X)
    np.testing.assert_allclose(p, _reference_probs(net, X), rtol=1e-6)


def test_predict_proba_agrees_with_evaluate_to_the_last_bit_ties_included():
    # zero biases and ReLU: inputs that kill every hidden unit give exactly tied logits; the predicted
    # class (argmax of the probabilities) must be the one evaluate counts as its prediction
    net = MLP([2, 6, 6, 3], "relu")
    net.initialize("he", 1.0, np.random.default_rng(5))
    X = np.random.default_rng(6).standard_normal((3000, 2)).astype(np.float32) * 3
    y = np.random.default_rng(7).integers(0, 3, 3000)
    p = net.predict_proba(X)
    ties = (p == p.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert ties.any()
    assert np.mean(np.argmax(p, axis=1) == y) == net.evaluate(X, y)[1]


def test_softmax_into_matches_softmax_for_narrow_and_wide_rows():
    rng = np.random.default_rng(3)
    for c in (2, 5, 30):
        z = rng.standard_normal((40, c)) * 50
        out = np.empty_like(z)
        softmax_into(z, out, np.empty(40))
        np.testing.assert_allclose(out, softmax(z), rtol=1e-12)
        softmax_into(z, z, np.empty(40))  # in place
        np.testing.assert_allclose(z, out, rtol=1e-12)


@pytest.mark.parametrize("activation", sorted(ACTS))
def test_trace_forward_and_backward_against_independent_computations(activation):
    net = _net([3, 6, 5, 4], activation)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((9, 3))
    y = rng.integers(0, 4, 9)
    grads_before, params_before = net.grads.copy(), net.params.copy()
    tr = net.trace(X, y)

    # forward: the textbook layers
    f, a = ACTS[activation], X
    for i in range(net.n_layers):
        z = a @ net.W[i] + net.b[i]
        np.testing.assert_allclose(tr.pre[i], z, rtol=1e-12)
        if i < net.n_layers - 1:
            a = f(z)
            np.testing.assert_allclose(tr.post[i], a, rtol=1e-12, atol=1e-15)
    # the loss is the one evaluate reports
    assert tr.loss == pytest.approx(net.evaluate(X, y)[0], rel=1e-12)
    # weight gradients equal the training pass's (on a clone: the net's own grads stay untouched)
    other = net.clone()
    other.loss_and_grad(X, y)
    for i in range(net.n_layers):
        np.testing.assert_allclose(tr.dW[i], other.dW[i], rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(tr.db[i], other.db[i], rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(net.grads, grads_before)
    np.testing.assert_array_equal(net.params, params_before)
    # dL/dX against centred finite differences of evaluate's loss
    eps = 1e-6
    num = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += eps
        Xm[idx] -= eps
        num[idx] = (net.evaluate(Xp, y)[0] - net.evaluate(Xm, y)[0]) / (2 * eps)
    if activation in ("relu", "leaky_relu"):  # a nudge may cross a kink: compare where none is near
        z_all = np.concatenate([z.ravel() for z in tr.pre[:-1]])
        assert np.abs(z_all).min() > 1e-4
    np.testing.assert_allclose(tr.d_input, num, rtol=1e-5, atol=1e-9)
    # dL/dA of a hidden layer is dL/dZ of the next layer times W^T, and dL/dZ = dL/dA · f'(Z)
    for i in range(net.n_layers - 1):
        np.testing.assert_allclose(tr.d_post[i], tr.d_pre[i + 1] @ net.W[i + 1].T, rtol=1e-12)
        np.testing.assert_allclose(tr.d_pre[i], tr.d_post[i] * DERIVS[activation](tr.pre[i]), rtol=1e-12)


def test_trace_without_labels_and_without_weight_grads():
    net = _net([2, 3, 2], "tanh")
    X = np.ones((4, 2))
    tr = net.trace(X)
    assert tr.loss is None and tr.d_pre is None and len(tr.pre) == 2 and len(tr.post) == 1
    tr = net.trace(X, np.array([0, 1, 0, 1]), weight_grads=False)
    assert tr.dW is None and tr.d_input.shape == (4, 2)


def test_clone_is_an_independent_copy():
    net = _net([2, 4, 3], "leaky_relu", dtype="float32")
    c64 = net.clone(dtype="float64")
    assert c64.dtype == np.float64 and c64.layer_sizes == net.layer_sizes and c64.activation == "leaky_relu"
    np.testing.assert_array_equal(c64.params, net.params.astype(np.float64))
    c = net.clone()
    assert c.same_architecture(net) and not c64.same_architecture(net)
    c.params += 1
    assert not np.array_equal(c.params, net.params)
    X = np.random.default_rng(0).standard_normal((5, 2))
    np.testing.assert_allclose(c64.predict_proba(X), net.predict_proba(X), rtol=1e-5)
