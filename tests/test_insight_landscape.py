"""Loss landscape: filter normalization on a hand-built network; the centre is the evaluated loss."""

import numpy as np
import pytest

from engine.batches import EvalSet
from engine.dataset import ArraySet
from engine.errors import Cancelled
from engine.insight.landscape import alphas_for, filter_normalized_direction, loss_slice_1d, loss_slice_2d
from engine.network import MLP


def _hand_net():
    net = MLP([2, 3, 2], "relu", dtype="float64")
    net.W[0][...] = [[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]]  # column norms 5, 0, sqrt(2)
    net.b[0][...] = [0.5, -0.5, 0.1]
    net.W[1][...] = [[1.0, 2.0], [0.0, 0.0], [0.0, 2.0]]  # column norms 1, sqrt(8)
    net.b[1][...] = [0.2, -0.2]
    return net


def test_filter_normalization_on_a_hand_built_network():
    net = _hand_net()
    d = filter_normalized_direction(net, np.random.default_rng(3))
    # the same Gaussian draws, rescaled by hand
    rng = np.random.default_rng(3)
    g1, g2 = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    e1 = g1 * np.array([5.0, 0.0, np.sqrt(2)]) / np.linalg.norm(g1, axis=0)
    e2 = g2 * np.array([1.0, np.sqrt(8)]) / np.linalg.norm(g2, axis=0)
    probe = net.clone()
    probe.set_params(d)  # read the direction back through the network's own layout
    np.testing.assert_allclose(probe.W[0], e1, rtol=1e-12)
    np.testing.assert_allclose(probe.W[1], e2, rtol=1e-12)
    # each unit's direction has the norm of its weights; the dead unit's is zero; biases are zero
    np.testing.assert_allclose(np.linalg.norm(probe.W[0], axis=0), [5.0, 0.0, np.sqrt(2)])
    np.testing.assert_allclose(np.linalg.norm(probe.W[1], axis=0), [1.0, np.sqrt(8)])
    assert not probe.b[0].any() and not probe.b[1].any()


def _sets(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2)) * 3 + 1
    y = (X[:, 0] * X[:, 1] > 1).astype(np.int64)
    mean, std = np.array([1.0, 1.0], np.float32), np.array([3.0, 3.0], np.float32)
    return X, y, mean, std


def test_slice_centre_equals_the_evaluated_loss_and_points_are_the_shifted_weights():
    net = MLP([2, 8, 2], "tanh")
    net.initialize("xavier", 1.0, np.random.default_rng(1))
    X, y, mean, std = _sets()
    ev = EvalSet(ArraySet(X, y), mean, std)
    dev = EvalSet(ArraySet(X[:50], y[:50]), mean, std)
    params = net.params.copy()
    calls = []
    sl = loss_slice_1d(
        net,
        {"train": ev, "dev": dev},
        points=7,
        span=0.5,
        n_directions=2,
        seed=4,
        progress=lambda d, t: calls.append((d, t)),
    )
    np.testing.assert_array_equal(net.params, params)  # the network is not moved
    np.testing.assert_allclose(sl.alphas, [-0.5, -1 / 3, -1 / 6, 0.0, 1 / 6, 1 / 3, 0.5])
    assert sl.alphas[3] == 0.0 and np.allclose(sl.alphas, -sl.alphas[::-1])
    assert sl.loss["train"][3] == ev.evaluate(net)[0]  # exactly evaluate's number
    assert sl.loss["dev"][3] == dev.evaluate(net)[0]
    assert calls[-1] == (2 * 7 * 2, 2 * 7 * 2)
    # a point off the centre: evaluate the network with θ + α·d built independently
    rng = np.random.default_rng(4)
    d0 = filter_normalized_direction(net, rng)
    d1 = filter_normalized_direction(net, rng)
    for k, d in enumerate((d0, d1)):
        moved = net.clone()
        moved.set_params(params.astype(np.float64) + sl.alphas[6] * d)
        assert sl.per_direction["train"][k, 6] == pytest.approx(ev.evaluate(moved)[0], rel=1e-6)
    np.testing.assert_allclose(sl.loss["train"], sl.per_direction["train"].mean(axis=0))
    assert sl.loss["train"][0] > sl.loss["train"][3]  # moving away from trained-ish weights costs


def test_slice_2d_centre_middle_row_and_cancel():
    net = MLP([2, 6, 2], "relu", dtype="float64")
    net.initialize("he", 1.0, np.random.default_rng(2))
    X, y, mean, std = _sets(100, seed=3)
    ev = EvalSet(ArraySet(X, y), mean, std, "float64")
    s2 = loss_slice_2d(net, ev, points=5, span=1.0, seed=9)
    assert s2.loss.shape == (5, 5)
    assert s2.loss[2, 2] == ev.evaluate(net)[0]
    s1 = loss_slice_1d(net, {"train": ev}, points=5, span=1.0, n_directions=1, seed=9)
    np.testing.assert_allclose(s2.loss[2], s1.per_direction["train"][0], rtol=1e-12)  # β = 0: along d₁
    with pytest.raises(Cancelled):
        loss_slice_1d(net, {"train": ev}, points=5, cancel=lambda: True)


def test_alphas_need_an_odd_count_and_positive_span():
    assert alphas_for(3, 2.0).tolist() == [-2.0, 0.0, 2.0]
    with pytest.raises(ValueError):
        alphas_for(4, 1.0)
    with pytest.raises(ValueError):
        alphas_for(5, 0.0)


def test_eval_sets_use_the_given_normalization_and_subsample():
    from engine.dataset import PreparedData
    from engine.insight.landscape import eval_sets

    X, y, mean, std = _sets(300, seed=5)
    empty = ArraySet(np.zeros((0, 2)), np.zeros(0, np.int64))
    data = PreparedData(
        ArraySet(X[:200], y[:200]), ArraySet(X[200:], y[200:]), empty, ["a", "b"], (2,), mean, std
    )
    net = MLP([2, 4, 2], "tanh")
    net.initialize("xavier", 1.0, np.random.default_rng(0))
    other_mean, other_std = np.zeros(2, np.float32), np.ones(2, np.float32)
    sets = eval_sets(data, other_mean, other_std, names=("train", "dev", "test"))
    assert set(sets) == {"train", "dev"}  # the empty test set is left out
    expected = EvalSet(ArraySet(X[200:], y[200:]), other_mean, other_std).evaluate(net)
    assert sets["dev"].evaluate(net) == expected
    small = eval_sets(data, mean, std, max_samples=50, seed=3)
    assert len(small["train"]) == 50 and len(small["dev"]) == 50
    idx = np.sort(np.random.default_rng(3).choice(200, size=50, replace=False))
    np.testing.assert_array_equal(small["train"].y, y[idx])
