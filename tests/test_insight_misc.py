"""Why-normalize demo, the weight-decay factor, and the window's background gradient check."""

import numpy as np
import pytest

from engine.config import from_dict
from engine.errors import Cancelled
from engine.gradcheck import RULE, check_loaded, check_network, check_prepared, gradient_check
from engine.insight.normalize_demo import demo_data, normalization_demo
from engine.network import MLP
from engine.optimizers import SGD
from engine.regularization import penalty_grad, weight_decay_factor

# ---------------------------------------------------------------- why normalize


def test_normalization_demo_costs_paths_and_rates_against_direct_computation():
    demo = normalization_demo(scale=20.0, n=200, steps=30, grid=41, seed=0)
    X, y = demo_data(20.0, 200, seed=0)
    n = len(y)

    def J(Xm, w):
        r = Xm @ w - y
        return r @ r / (2 * n)

    Xn = X / X.std(axis=0)
    for pic, Xm in ((demo.raw, X), (demo.normalized, Xn), (demo.normalized_own_lr, Xn)):
        i, j = 7, 29
        assert pic.cost[i, j] == pytest.approx(J(Xm, np.array([pic.w1[j], pic.w2[i]])), rel=1e-10)
        np.testing.assert_allclose(pic.minimum, np.linalg.lstsq(Xm, y, rcond=None)[0], rtol=1e-10)
        # one gradient-descent step by hand: w - lr · Xᵀ(Xw - y)/n
        w0 = pic.path[0]
        np.testing.assert_allclose(pic.path[1], w0 - pic.lr * Xm.T @ (Xm @ w0 - y) / n, rtol=1e-10)
        assert pic.path_cost[5] == pytest.approx(J(Xm, pic.path[5]), rel=1e-10)
        lam = np.linalg.eigvalsh(Xm.T @ Xm / n)
        assert pic.lr_limit == pytest.approx(2 / lam[-1])
    # the shared rate is the raw problem's largest stable one (0.95 of 2/λ_max)
    assert demo.raw.lr == pytest.approx(0.95 * demo.raw.lr_limit)
    assert demo.normalized.lr == demo.raw.lr
    assert demo.raw.condition_number > 300 and demo.normalized.condition_number < 1.5
    # raw: the steep coordinate overshoots every step (zig-zag); standardized: no sign change
    raw_off = demo.raw.path[:8, 1] - demo.raw.minimum[1]
    assert (np.sign(raw_off[1:]) != np.sign(raw_off[:-1])).all()
    norm_off = demo.normalized.path[:8, 1] - demo.normalized.minimum[1]
    assert (np.sign(norm_off) == np.sign(norm_off[0])).all()
    # at its own best rate the standardized problem reaches the minimum within a few steps
    own = demo.normalized_own_lr
    assert own.path_cost[4] - J(Xn, own.minimum) < 1e-3 * (own.path_cost[0] - J(Xn, own.minimum))
    assert set(demo.to_dict()) == {"raw", "normalized", "normalized_own_lr", "feature_std"}


def test_normalization_demo_is_deterministic():
    a, b = normalization_demo(steps=5, grid=5), normalization_demo(steps=5, grid=5)
    np.testing.assert_array_equal(a.raw.path, b.raw.path)
    np.testing.assert_array_equal(a.normalized.cost, b.normalized.cost)


# ---------------------------------------------------------------- weight decay


def test_weight_decay_factor_is_one_sgd_step_on_the_l2_gradient():
    lr, l2, m = 0.1, 0.7, 50
    W = np.array([[1.0, -2.0], [0.5, 3.0]])
    params = W.ravel().copy()
    SGD(lr, params.size, np.float64).step(params, penalty_grad(W, l2, 0.0, m).ravel())
    np.testing.assert_allclose(params, weight_decay_factor(lr, l2, m) * W.ravel(), rtol=1e-15)
    assert weight_decay_factor(0.1, 0.7, 1000) == pytest.approx(0.99993)
    assert weight_decay_factor(0.1, 0.0, 10) == 1.0
    with pytest.raises(ValueError):
        weight_decay_factor(0.1, 0.7, 0)


# ---------------------------------------------------------------- background gradient check


def _live_net():
    net = MLP([3, 6, 4, 3], "tanh", dtype="float32")
    rng = np.random.default_rng(0)
    net.initialize("xavier", 1.0, rng)
    X = rng.standard_normal((50, 3)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    return net, X, y


def test_check_network_works_on_a_float64_copy_with_the_penalty_and_leaves_the_net_alone():
    net, X, y = _live_net()
    net.grads[...] = 7.0  # the training net's last gradients must survive the check
    params = net.params.copy()
    seen = []
    result = check_network(net, X, y, l2=0.5, l1=0.1, n_samples=20, progress=lambda d, t: seen.append((d, t)))
    assert result["passed"] and result["relative_difference"] < 1e-7
    assert result["rule"] == RULE and "dropout off" in RULE and "penalty" in RULE and "float64" in RULE
    assert result["n_samples"] == 20
    assert (net.grads == 7.0).all()
    np.testing.assert_array_equal(net.params, params)
    assert seen[-1] == (net.n_params, net.n_params)
    # the same number as gradient_check on an explicit float64 copy of the first 20 samples
    copy = MLP(net.layer_sizes, "tanh", dtype="float64")
    copy.set_params(net.params.astype(np.float64))
    expected = gradient_check(copy, X[:20].astype(np.float64), y[:20], l2=0.5, l1=0.1)
    assert result["relative_difference"] == pytest.approx(expected["relative_difference"], rel=1e-9)


def test_check_network_includes_the_penalty(monkeypatch):
    net, X, y = _live_net()
    # a network whose backprop forgets the penalty gradient must fail a check with l2 > 0
    monkeypatch.setattr(MLP, "_add_penalty_grads", lambda self, l2, l1, m: self.penalty(l2, l1, m))
    assert check_network(net, X, y)["passed"]
    assert not check_network(net, X, y, l2=1.0)["passed"]


def test_check_network_can_be_cancelled():
    net, X, y = _live_net()
    with pytest.raises(Cancelled):
        check_network(net, X, y, cancel=lambda: True)


def test_check_prepared_and_check_loaded(tmp_path):
    from engine.experiment import run_experiment
    from engine.prepare import prepare_data
    from engine.runs import load_model

    cfg = from_dict(
        {
            "data": {"source": "builtin:moons", "n_samples": 120, "seed": 1},
            "model": {"hidden": [5], "activation": "tanh"},
            "regularization": {"l2": 0.3},
            "training": {"epochs": 2, "batch_size": 32},
        }
    )
    data = prepare_data(cfg)
    exp = run_experiment(cfg, tmp_path / "run", data=data)
    list(exp.records())
    model = load_model(tmp_path / "run")
    r1 = check_loaded(model, data.train.X, data.train.y, n_samples=16)
    r2 = check_prepared(model.net, data, l2=0.3, n_samples=16)
    assert r1["passed"] and r2["passed"] and r1["n_samples"] == 16
    assert r1["relative_difference"] == pytest.approx(r2["relative_difference"], rel=1e-9)
