"""MLP: hand-computed forward/backward, penalties, dropout, dtypes, symmetry of zero init."""

import math

import numpy as np
import pytest

from engine.network import MLP
from engine.optimizers import SGD, Adam


def _tiny_net(activation="tanh", dtype="float64"):
    """2 inputs → 3 hidden → 2 classes with small explicit numbers."""
    net = MLP([2, 3, 2], activation, dtype=dtype, max_batch=4)
    net.W[0][...] = [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]
    net.b[0][...] = [0.01, -0.02, 0.03]
    net.W[1][...] = [[0.7, -0.8], [0.9, 0.2], [-0.3, 0.6]]
    net.b[1][...] = [0.05, -0.05]
    return net


X3 = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]])
Y3 = np.array([0, 1, 1])

DERIV = {
    "tanh": (math.tanh, lambda z, a: 1 - a * a),
    "relu": (lambda z: max(z, 0.0), lambda z, a: 1.0 if z > 0 else 0.0),
    "sigmoid": (lambda z: 1 / (1 + math.exp(-z)), lambda z, a: a * (1 - a)),
    "leaky_relu": (lambda z: z if z > 0 else 0.01 * z, lambda z, a: 1.0 if z > 0 else 0.01),
    "linear": (lambda z: z, lambda z, a: 1.0),
}


def _reference_loop(W1, b1, W2, b2, X, y, activation):
    """Cost and gradients with explicit per-sample, per-unit loops (independent of the engine)."""
    f, df = DERIV[activation]
    n = len(X)
    gW1, gb1 = np.zeros_like(W1), np.zeros_like(b1)
    gW2, gb2 = np.zeros_like(W2), np.zeros_like(b2)
    loss = 0.0
    for s in range(n):
        x = X[s]
        z1 = [sum(x[i] * W1[i, j] for i in range(2)) + b1[j] for j in range(3)]
        a1 = [f(z) for z in z1]
        z2 = [sum(a1[j] * W2[j, k] for j in range(3)) + b2[k] for k in range(2)]
        e = [math.exp(z) for z in z2]
        p = [v / sum(e) for v in e]
        loss += -math.log(p[y[s]]) / n
        dz2 = [(p[k] - (1.0 if k == y[s] else 0.0)) / n for k in range(2)]
        for k in range(2):
            gb2[k] += dz2[k]
            for j in range(3):
                gW2[j, k] += a1[j] * dz2[k]
        for j in range(3):
            dz1 = sum(W2[j, k] * dz2[k] for k in range(2)) * df(z1[j], a1[j])
            gb1[j] += dz1
            for i in range(2):
                gW1[i, j] += x[i] * dz1
    return loss, gW1, gb1, gW2, gb2


@pytest.mark.parametrize("activation", sorted(DERIV))
def test_one_step_matches_hand_loops(activation):
    net = _tiny_net(activation)
    ref = [a.copy() for a in (net.W[0], net.b[0], net.W[1], net.b[1])]
    loss, gW1, gb1, gW2, gb2 = _reference_loop(*ref, X3, Y3, activation)
    cost, pen = net.loss_and_grad(X3, Y3)
    assert pen == 0.0
    assert cost == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(net.dW[0], gW1, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(net.db[0], gb1, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(net.dW[1], gW2, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(net.db[1], gb2, rtol=1e-10, atol=1e-15)
    # and the SGD step moves every parameter by -lr·grad
    before = net.get_params()
    net.train_step(
        X3,
        Y3,
        SGD(0.5, net.n_params, np.float64),
        l2=0.0,
        l1=0.0,
        m=3,
        keep_probs=None,
        input_keep_prob=1.0,
        rng=None,
    )
    expected = np.concatenate(
        [(ref[0] - 0.5 * gW1).ravel(), (ref[2] - 0.5 * gW2).ravel(), ref[1] - 0.5 * gb1, ref[3] - 0.5 * gb2]
    )
    np.testing.assert_allclose(net.params, expected, rtol=1e-10)
    assert not np.allclose(before, net.params)


def test_tanh_cost_against_hand_arithmetic():
    # sample 0 of the tiny net written out: z1 = (0.91, 0.78, -0.87), z2 = a1·W2 + b2
    net = _tiny_net("tanh")
    a1 = np.tanh([0.1 + 0.8 + 0.01, -0.2 + 1.0 - 0.02, 0.3 - 1.2 + 0.03])
    z2 = [0.7 * a1[0] + 0.9 * a1[1] - 0.3 * a1[2] + 0.05, -0.8 * a1[0] + 0.2 * a1[1] + 0.6 * a1[2] - 0.05]
    expected = -z2[0] + math.log(math.exp(z2[0]) + math.exp(z2[1]))
    cost, _ = net.loss_and_grad(X3[:1], Y3[:1])
    assert cost == pytest.approx(expected, rel=1e-12)
    assert net.evaluate(X3[:1], Y3[:1])[0] == pytest.approx(expected, rel=1e-12)


def _known_weights_net():
    net = _tiny_net("tanh")
    net.W[0][...] = [[1.0, -2.0, 0.0], [3.0, 0.0, -1.0]]
    net.W[1][...] = [[1.0, 2.0], [0.0, -1.0], [2.0, 0.0]]
    return net  # Σ W² = 15 + 10 = 25, Σ|W| = 7 + 6 = 13; biases (not penalized) are non-zero


def test_penalty_values_on_known_matrices():
    net = _known_weights_net()
    assert net.penalty(0.4, 0.0, 5) == pytest.approx(0.4 / 10 * 25)
    assert net.penalty(0.0, 0.5, 5) == pytest.approx(0.5 / 5 * 13)
    assert net.penalty(0.4, 0.5, 5) == pytest.approx(1.0 + 1.3)
    assert net.weight_norm() == pytest.approx(5.0)


def test_penalty_enters_cost_and_gradient_with_training_m():
    net = _known_weights_net()
    base_cost, _ = net.loss_and_grad(X3, Y3)
    base = net.grads.copy()
    cost, pen = net.loss_and_grad(X3, Y3, l2=0.4, l1=0.5, m=5)  # m = training-set size, not 3
    assert pen == pytest.approx(2.3)
    assert cost == pytest.approx(base_cost + 2.3)
    for i in range(2):
        w = net.W[i]
        np.testing.assert_allclose(net.dW[i] - _dW_of(net, base, i), (0.4 / 5) * w + (0.5 / 5) * np.sign(w))
        np.testing.assert_allclose(net.db[i], _db_of(net, base, i))  # biases not penalized


def _dW_of(net, flat, i):
    off = sum(w.size for w in net.W[:i])
    return flat[off : off + net.W[i].size].reshape(net.W[i].shape)


def _db_of(net, flat, i):
    off = net.n_weights + sum(b.size for b in net.b[:i])
    return flat[off : off + net.b[i].size]


def test_l1_subgradient_is_zero_at_zero():
    net = _known_weights_net()
    net.loss_and_grad(X3, Y3)
    base = net.grads.copy()
    net.loss_and_grad(X3, Y3, l1=1.0, m=1)
    diff = net.dW[0] - _dW_of(net, base, 0)
    np.testing.assert_allclose(diff, np.sign(net.W[0]), atol=1e-12)
    assert diff[0, 2] == 0.0 and diff[1, 1] == 0.0


# ------------------------------------------------------------ dropout


def _probe_net(n_hidden, activation="relu"):
    """1 sample, positive pre-activations, zero output weights: the gradient of W2 exposes a1."""
    net = MLP([3, n_hidden, 2], activation, dtype="float64", max_batch=1)
    net.W[0][...] = 0.5
    net.b[0][...] = 0.25
    net.W[1][...] = 0.0
    return net


def test_dropout_keeps_fraction_and_scales_kept_units():
    p, h = 0.7, 40000
    net = _probe_net(h)
    x = np.array([[1.0, 2.0, 3.0]])
    z = 0.5 * 6 + 0.25
    net.loss_and_grad(x, np.array([0]), keep_probs=[p], rng=np.random.default_rng(0))
    # logits are 0, so dZ2 = (0.5 − 1, 0.5) and dW2[:, 1] = a1 · 0.5
    a1 = net.dW[1][:, 1] / 0.5
    kept = a1 != 0
    assert kept.mean() == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / h))
    np.testing.assert_allclose(a1[kept], z / p, rtol=1e-12)
    assert a1.mean() == pytest.approx(z, rel=0.02)  # expected activation preserved


def test_input_dropout_scales_kept_inputs():
    p, d = 0.6, 30000
    net = MLP([d, 2], dtype="float64", max_batch=1)  # W = 0: logits 0, dW[:, 1] = x_dropped · 0.5
    x = np.linspace(1.0, 2.0, d)[None, :]
    net.loss_and_grad(x, np.array([0]), input_keep_prob=p, rng=np.random.default_rng(1))
    xd = net.dW[0][:, 1] / 0.5
    kept = xd != 0
    assert kept.mean() == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / d))
    np.testing.assert_allclose(xd[kept], x[0, kept] / p, rtol=1e-12)


def test_dropout_masks_differ_between_steps_and_follow_the_seed():
    def a1_of(rng):
        net = _probe_net(500)
        net.loss_and_grad(np.ones((1, 3)), np.array([0]), keep_probs=[0.5], rng=rng)
        return net.dW[1][:, 1].copy()

    rng = np.random.default_rng(3)
    first, second = a1_of(rng), a1_of(rng)
    assert not np.array_equal(first != 0, second != 0)
    np.testing.assert_array_equal(first, a1_of(np.random.default_rng(3)))


def test_inference_is_deterministic_and_mask_free():
    net = MLP([4, 30, 20, 3], "relu", dtype="float64")
    net.initialize("he", 1.0, np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((50, 4))
    y = np.random.default_rng(2).integers(0, 3, 50)
    # a training step with heavy dropout must not leave anything behind for inference
    net.loss_and_grad(X, y, keep_probs=[0.3, 0.3], input_keep_prob=0.5, rng=np.random.default_rng(4))
    p1 = net.predict_proba(X)
    p2 = net.predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    a = X
    for i in range(2):
        a = np.maximum(a @ net.W[i] + net.b[i], 0)
    z = a @ net.W[2] + net.b[2]
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p1, expected, rtol=1e-12)
    loss, acc = net.evaluate(X, y)
    assert loss == pytest.approx(-np.mean(np.log(expected[np.arange(50), y])), rel=1e-12)
    assert acc == pytest.approx(np.mean(expected.argmax(1) == y))


def test_keep_prob_one_means_no_dropout_and_no_rng_needed():
    net = MLP([4, 6, 3], "tanh", dtype="float64")
    net.initialize("glorot", 1.0, np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((5, 4))
    y = np.array([0, 1, 2, 0, 1])
    c1, _ = net.loss_and_grad(X, y)
    g1 = net.grads.copy()
    c2, _ = net.loss_and_grad(X, y, keep_probs=[1.0], input_keep_prob=1.0, rng=None)
    assert c1 == c2
    np.testing.assert_array_equal(g1, net.grads)
    with pytest.raises(ValueError, match="rng"):
        net.loss_and_grad(X, y, keep_probs=[0.5])


# ------------------------------------------------------------ dtypes, buffers, misc


def _train_a_bit(dtype, steps=3, l2=0.1, l1=0.01, batch=16):
    rng = np.random.default_rng(0)
    net = MLP([5, 8, 7, 3], "relu", dtype=dtype, max_batch=8)
    net.initialize("he", 1.0, rng)
    opt = Adam(0.01, net.n_params, dtype)
    X = rng.standard_normal((batch, 5)).astype(dtype)
    y = rng.integers(0, 3, batch)
    views = [w for w in net.W]
    costs = [
        net.train_step(X, y, opt, l2=l2, l1=l1, m=100, keep_probs=[0.8, 0.9], input_keep_prob=0.9, rng=rng)
        for _ in range(steps)
    ]
    return net, views, costs, X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_through_training(dtype):
    net, views, costs, X = _train_a_bit(dtype)
    for arr in [net.params, net.grads, *net.W, *net.b, *net.dW, *net.db, *net._a, *net._mult]:
        assert arr.dtype == np.dtype(dtype)
    assert net.predict_proba(X).dtype == np.dtype(dtype)
    assert net.predict_proba(X.astype(np.float64)).dtype == np.dtype(dtype)
    for v, w in zip(views, net.W):
        assert v is w and np.shares_memory(w, net.params)  # updates happened in place
    assert all(isinstance(c, float) and math.isfinite(c) for c in costs)


def test_batches_bigger_than_max_batch_grow_the_buffers():
    net, _, _, _ = _train_a_bit("float64", batch=30)  # max_batch was 8
    assert net._a[0].shape[0] >= 30
    X = np.random.default_rng(9).standard_normal((30, 5))
    y = np.zeros(30, dtype=np.int64)
    big_cost, _ = net.loss_and_grad(X, y)
    small = [net.loss_and_grad(X[i : i + 10], y[i : i + 10])[0] for i in (0, 10, 20)]
    assert big_cost == pytest.approx(np.mean(small), rel=1e-12)


def test_training_reduces_loss_on_a_separable_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)  # xor-like: needs the hidden layer
    net = MLP([2, 16, 2], "tanh", max_batch=50)
    net.initialize("xavier", 1.0, rng)
    opt = Adam(0.05, net.n_params, np.float32)
    loss0, _ = net.evaluate(X, y)
    for _ in range(150):
        for i in range(0, 200, 50):
            net.train_step(
                X[i : i + 50],
                y[i : i + 50],
                opt,
                l2=0.0,
                l1=0.0,
                m=200,
                keep_probs=None,
                input_keep_prob=1.0,
                rng=rng,
            )
    loss1, acc = net.evaluate(X, y)
    assert loss1 < 0.5 * loss0 and acc > 0.9


def test_zeros_init_keeps_hidden_units_identical():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = rng.integers(0, 3, 40)
    net = MLP([3, 5, 4, 3], "sigmoid", dtype="float64")
    net.initialize("zeros", 1.0, rng)
    opt = Adam(0.05, net.n_params, np.float64)
    for _ in range(30):
        net.train_step(X, y, opt, l2=0.0, l1=0.0, m=40, keep_probs=None, input_keep_prob=1.0, rng=rng)
    for i in range(3):
        assert np.abs(net.W[i]).max() > 1e-3  # the weights did move...
    for w in net.W[:2]:  # ...but every hidden unit's incoming weights stay identical
        np.testing.assert_allclose(w, w[:, :1].repeat(w.shape[1], axis=1), rtol=1e-12, atol=1e-15)
    for w in net.W[1:]:  # and so do their outgoing weights
        np.testing.assert_allclose(w, w[:1].repeat(w.shape[0], axis=0), rtol=1e-12, atol=1e-15)
    # a random init breaks the symmetry
    net.initialize("he", 1.0, rng)
    assert not np.allclose(net.W[0][:, 0], net.W[0][:, 1])


def test_grad_norms_weight_norm_and_param_copies():
    net = _known_weights_net()
    net.loss_and_grad(X3, Y3)
    expected = [float(np.linalg.norm(net.dW[0])), float(np.linalg.norm(net.dW[1]))]
    assert net.grad_norms() == pytest.approx(expected, rel=1e-12)
    saved = net.get_params()
    net.params += 1.0
    assert not np.allclose(saved, net.params)
    net.set_params(saved)
    np.testing.assert_array_equal(net.params, saved)
    assert net.weight_norm() == pytest.approx(5.0)
    with pytest.raises(ValueError):
        net.set_params(saved[:-1])


def test_predict_proba_chunks_large_inputs_and_two_classes_sum_to_one():
    net = MLP([3, 4, 2], "relu")
    net.initialize("he", 3.0, np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((9000, 3)).astype(np.float32) * 100
    p = net.predict_proba(X)
    assert p.shape == (9000, 2) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p[5000:5010], net.predict_proba(X[5000:5010]), rtol=1e-6)


def test_large_logits_do_not_overflow():
    net = MLP([1, 2], dtype="float32")
    net.W[0][...] = [[1e4, -1e4]]
    cost, _ = net.loss_and_grad(np.array([[1.0], [-1.0]], dtype=np.float32), np.array([0, 0]))
    assert cost == pytest.approx(1e4, rel=1e-6)  # sample 2: -log softmax = 2e4, sample 1: 0
    assert np.isfinite(net.grads).all()


def test_activation_stats_report_each_hidden_layer():
    net = MLP([4, 6, 5, 3], "tanh", dtype="float64")
    net.initialize("xavier", 1.0, np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((20, 4))
    stats = net.activation_stats(X)
    a1 = np.tanh(X @ net.W[0] + net.b[0])
    a2 = np.tanh(a1 @ net.W[1] + net.b[1])
    assert stats["mean_abs"] == pytest.approx([np.abs(a1).mean(), np.abs(a2).mean()])
    assert stats["std"] == pytest.approx([a1.std(), a2.std()])


@pytest.mark.parametrize("sizes", [[1, 2], [1, 3, 2]])
def test_rows_far_below_the_batch_maximum_stay_finite(sizes):
    # row 1 has logits near 1e4, row 2 near 0: shifting row 2 by the batch maximum would underflow
    net = MLP(sizes, "linear", dtype="float32")
    if len(sizes) == 2:
        net.W[0][...] = [[1e4, -1e4]]
    else:
        net.W[0][...] = [[1.0, 1.0, 1.0]]
        net.W[1][...] = [[1e4 / 3, -1e4 / 3]] * 3
    X = np.array([[1.0], [0.0]], dtype=np.float32)
    cost, _ = net.loss_and_grad(X, np.array([0, 1]))
    assert cost == pytest.approx(math.log(2) / 2, rel=1e-5)  # row 1: 0, row 2: log 2
    np.testing.assert_allclose(net.db[-1], [0.25, -0.25], rtol=1e-5)  # row 2: (0.5 − onehot(1)) / 2


def test_regularization_helpers_on_known_matrices():
    from engine.regularization import dropout_mask, l1_penalty, l2_penalty, penalty_grad

    Ws = [np.array([[1.0, -2.0, 0.0], [3.0, 0.0, -1.0]]), np.array([[1.0, 2.0], [0.0, -1.0], [2.0, 0.0]])]
    assert l2_penalty(Ws, 0.4, 5) == pytest.approx(1.0)  # 0.4/10 · 25
    assert l1_penalty(Ws, 0.5, 5) == pytest.approx(1.3)  # 0.5/5 · 13
    np.testing.assert_allclose(penalty_grad(Ws[0], 0.4, 0.5, 5), 0.08 * Ws[0] + 0.1 * np.sign(Ws[0]))
    mask = dropout_mask(np.random.default_rng(0), (200, 300), 0.25)
    assert mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, 4.0}
    assert (mask > 0).mean() == pytest.approx(0.25, abs=0.01)
    assert not (dropout_mask(np.random.default_rng(0), (3, 3), 1.0) != 1).any()


def test_losses_module_matches_the_network():
    from engine.losses import cross_entropy, cross_entropy_grad

    net = MLP([3, 4], dtype="float64")  # one layer: logits = X W + b
    net.initialize("random", 1.0, np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((6, 3))
    y = np.array([0, 1, 2, 3, 0, 1])
    cost, _ = net.loss_and_grad(X, y)
    logits = X @ net.W[0] + net.b[0]
    assert cost == pytest.approx(cross_entropy(logits, y), rel=1e-12)
    np.testing.assert_allclose(net.dW[0], X.T @ cross_entropy_grad(logits, y), rtol=1e-10)
