"""Gradient checking: every activation and penalty passes; deliberately wrong gradients fail."""

import dataclasses

import numpy as np
import pytest

from engine import activations
from engine.config import from_dict
from engine.dataset import ArraySet, PreparedData
from engine.gradcheck import THRESHOLD, check_config, gradient_check
from engine.network import MLP

PENALTIES = [(0.0, 0.0), (0.7, 0.0), (0.0, 0.3), (0.5, 0.2)]


def _net(activation, seed=0, sizes=(4, 5, 6, 3)):
    rng = np.random.default_rng(seed)
    net = MLP(list(sizes), activation, dtype="float64")
    net.initialize("xavier", 1.0, rng)
    for b in net.b:  # non-zero biases, so bias gradients and ReLU kinks are exercised too
        b[...] = rng.standard_normal(b.shape) * 0.3
    X = rng.standard_normal((8, sizes[0]))
    y = rng.integers(0, sizes[-1], 8)
    return net, X, y


@pytest.mark.parametrize("l2,l1", PENALTIES)
@pytest.mark.parametrize("activation", sorted(activations.ACTIVATIONS))
def test_every_activation_and_penalty_passes(activation, l2, l1):
    net, X, y = _net(activation)
    before = net.get_params()
    result = gradient_check(net, X, y, l2=l2, l1=l1)
    assert result["passed"], result
    assert result["relative_difference"] < 1e-7
    assert result["threshold"] == THRESHOLD == 1e-7
    assert result["n_params"] == 4 * 5 + 5 + 5 * 6 + 6 + 6 * 3 + 3
    assert "dropout" in result["note"] and "off" in result["note"]
    assert len(result["layers"]) == 3
    np.testing.assert_array_equal(net.get_params(), before)  # parameters restored


def test_two_class_output_passes():
    net, X, y = _net("tanh", sizes=(3, 4, 2))
    assert gradient_check(net, X, y, l2=0.1)["passed"]


def test_wrong_activation_derivative_is_caught(monkeypatch):
    # a classic bug: tanh' written as 1 − a instead of 1 − a²
    def wrong_tanh_grad(z, a, out):
        np.subtract(1.0, a, out=out)
        return out

    broken = dataclasses.replace(activations.ACTIVATIONS["tanh"], grad=wrong_tanh_grad)
    monkeypatch.setitem(activations.ACTIVATIONS, "tanh", broken)
    net, X, y = _net("tanh")
    result = gradient_check(net, X, y)
    assert not result["passed"]
    assert result["relative_difference"] > 1e-3
    # only the first layer's gradient goes through the hidden derivatives of both layers
    assert result["layers"][2]["W"] < 1e-7 and result["layers"][0]["W"] > 1e-3


def test_perturbed_gradient_is_caught(monkeypatch):
    net, X, y = _net("sigmoid")
    original = net.loss_and_grad

    def off_by_a_little(*args, **kwargs):
        out = original(*args, **kwargs)
        net.grads[7] += 1e-4  # one weight's gradient slightly wrong
        return out

    monkeypatch.setattr(net, "loss_and_grad", off_by_a_little)
    result = gradient_check(net, X, y)
    assert not result["passed"] and result["relative_difference"] > THRESHOLD


def test_missing_penalty_gradient_is_caught(monkeypatch):
    net, X, y = _net("tanh")
    monkeypatch.setattr(net, "_add_penalty_grads", lambda l2, l1, m: net.penalty(l2, l1, m))
    assert gradient_check(net, X, y, l2=0.0)["passed"]  # no penalty: nothing missing
    assert not gradient_check(net, X, y, l2=0.5)["passed"]
    assert not gradient_check(net, X, y, l1=0.5)["passed"]


def test_float32_net_is_checked_in_float64():
    net, X, y = _net("tanh")
    net32 = MLP(net.layer_sizes, "tanh", dtype="float32")
    net32.set_params(net.params.astype(np.float32))
    result = gradient_check(net32, X.astype(np.float32), y)
    assert result["passed"]
    assert net32.params.dtype == np.float32


def _prepared(n=40, n_features=3, n_classes=3, images=False, seed=0):
    rng = np.random.default_rng(seed)
    if images:
        X = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
        shape = (4, 4, 3)
        F = X.reshape(n, -1) / 255.0
        mean, std = F.mean(axis=0), F.std(axis=0) + 1e-3
    else:
        X = rng.standard_normal((n, n_features)) * 5 + 2
        shape = (n_features,)
        mean, std = X.mean(axis=0), X.std(axis=0)
    y = np.arange(n) % n_classes
    s = ArraySet(X, y)
    return PreparedData(s, s, s, [f"c{i}" for i in range(n_classes)], shape, mean, std)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_check_config_builds_the_configured_network(activation):
    cfg = from_dict(
        {
            "model": {"hidden": [6, 5], "activation": activation, "init": "he"},
            "regularization": {"l2": 0.3, "l1": 0.05, "keep_prob": 0.5},
            "training": {"seed": 3},
        }
    )
    data = _prepared()
    result = check_config(cfg, data, n_samples=10)
    assert result["passed"], result
    assert result["n_params"] == 3 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3
    assert result["n_samples"] == 10
    assert "dropout" in result["note"]


def test_check_config_normalizes_image_inputs():
    cfg = from_dict({"model": {"hidden": [4], "activation": "sigmoid"}})
    data = _prepared(images=True)
    result = check_config(cfg, data, n_samples=6)
    assert result["passed"], result
    assert result["n_params"] == 48 * 4 + 4 + 4 * 3 + 3


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_batched_differences_equal_one_parameter_at_a_time(activation):
    from engine.gradcheck import numerical_gradient

    net, X, y = _net(activation, seed=4, sizes=(3, 4, 5, 3))
    eps = 1e-6
    loop = np.empty(net.n_params)
    saved = net.get_params()
    for k in range(net.n_params):  # the textbook loop, through the inference cost
        net.params[k] = saved[k] + eps
        plus = net.cost(X, y, l2=0.3, l1=0.2)
        net.params[k] = saved[k] - eps
        minus = net.cost(X, y, l2=0.3, l1=0.2)
        net.params[k] = saved[k]
        loop[k] = (plus - minus) / (2 * eps)
    batched = numerical_gradient(net, X, y, l2=0.3, l1=0.2, eps=eps)
    np.testing.assert_allclose(batched, loop, rtol=1e-6, atol=1e-9)
