"""Depth lab: per-layer factors against theory for linear nets; the init is the training init."""

import math
import warnings

import numpy as np
import pytest

from engine.errors import InputError
from engine.initializers import init_variance
from engine.insight.depthlab import DepthLab, depth_profile


def _slope(values):
    """Geometric mean factor per layer of a sequence (exp of the least-squares slope of its log)."""
    logs = np.log(np.asarray(values, dtype=float))
    return math.exp(np.polyfit(np.arange(len(logs)), logs, 1)[0])


@pytest.mark.parametrize(
    "init, scale, width",
    [("xavier", 1.5, 100), ("xavier", 0.5, 100), ("he", 1.0, 64), ("random", 0.08, 100), ("glorot", 1.2, 50)],
)
def test_linear_network_factor_per_layer_matches_theory(init, scale, width):
    depth = 30
    theory = scale * math.sqrt(width * init_variance(init, width, width))
    p = DepthLab(depth, width, "linear", init, samples=256, seed=1).profile(scale)
    assert p.factor == pytest.approx(theory)
    assert len(p.activation_std) == len(p.grad_norm) == depth + 2
    # forward: std of hidden layer l is std(X) · factor^l
    assert _slope(p.activation_std[:-1]) == pytest.approx(theory, rel=0.03)
    # backward through the hidden layers: each layer back multiplies the gradient norm by the factor
    assert 1 / _slope(p.grad_norm[:-1]) == pytest.approx(theory, rel=0.03)


def test_explosion_vanishing_and_level_with_relu():
    lab = DepthLab(50, 100, "relu", "he", samples=256)
    level = lab.profile(1.0).activation_std
    assert 0.5 < level[-2] / level[1] < 2.0  # He keeps ReLU layers level
    exploding = lab.profile(1.5).activation_std
    assert exploding[-2] / exploding[1] == pytest.approx(1.5**49, rel=0.5)
    vanishing = lab.profile(0.5).activation_std
    assert vanishing[-2] / vanishing[1] == pytest.approx(0.5**49, rel=0.5)


def test_profile_uses_the_training_init_with_init_scale_multiplying_the_std():
    depth, width, samples, seed, scale = 3, 20, 16, 5, 1.7
    p = DepthLab(depth, width, "tanh", "glorot", samples=samples, seed=seed).profile(scale)
    # independently: the same draws in the same order, init_weights at init_scale = scale
    from engine.initializers import init_weights

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, width))
    y = rng.integers(0, 10, samples)
    Ws = [init_weights("glorot", width, width, scale, rng, np.float64) for _ in range(depth)]
    Ws.append(init_weights("glorot", width, 10, scale, rng, np.float64))
    acts, zs, a = [X], [], X
    for W in Ws[:-1]:
        z = a @ W
        a = np.tanh(z)
        zs.append(z)
        acts.append(a)
    logits = a @ Ws[-1]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    dz = (e / e.sum(axis=1, keepdims=True) - np.eye(10)[y]) / samples
    grads = [dz]
    da = dz @ Ws[-1].T
    for k in range(depth - 1, -1, -1):
        grads.append(da)
        da = (da * (1 - np.tanh(zs[k]) ** 2)) @ Ws[k].T
    grads.append(da)  # dL/dX
    expected_std = [np.std(v) for v in acts] + [np.std(logits)]
    expected_grad = [np.linalg.norm(g) for g in grads[::-1]]
    assert p.activation_std == pytest.approx(expected_std, rel=1e-9)
    assert p.grad_norm == pytest.approx(expected_grad, rel=1e-9)
    assert p.layers == ("input", "hidden 1", "hidden 2", "hidden 3", "output")


def test_zeros_init_and_overflow_are_reported_not_warned():
    p = DepthLab(4, 10, "relu", "zeros").profile(1.0)
    assert p.activation_std[0] > 0 and p.activation_std[1:] == (0.0,) * 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        huge = DepthLab(100, 100, "linear", "random").profile(50.0)  # 500^100 overflows float64
    assert not math.isfinite(huge.activation_std[-1])
    d = depth_profile(100, 100, "linear", "random", 50.0)
    assert d["activation_std"][0] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"depth": 1}, "depth"),
        ({"depth": 101}, "depth"),
        ({"width": 0}, "width"),
        ({"activation": "swish"}, "activation"),
        ({"init": "orthogonal"}, "init"),
        ({"scale": -1.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"samples": 0}, "samples"),
        ({"depth": 100, "width": 1024, "samples": 1000}, "depth × width × samples"),
    ],
)
def test_bad_settings_name_the_field(kwargs, needle):
    args = {"depth": 5, "width": 10, "activation": "relu", "init": "he", "scale": 1.0}
    args.update(kwargs)
    with pytest.raises(InputError, match=needle):
        depth_profile(**args)
