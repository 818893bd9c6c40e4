"""Optimizers against hand-written update rules (the textbook formulas, not the folded ones)."""

import numpy as np
import pytest

from engine.config import OptimizerConfig
from engine.optimizers import SGD, Adam, Momentum, make_optimizer


def _grads(seed, n=6):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n)


def test_sgd_step_is_w_minus_lr_g():
    p = np.array([1.0, -2.0, 0.5])
    g = np.array([0.5, 0.25, -1.0])
    SGD(0.1, 3, np.float64).step(p, g)
    np.testing.assert_allclose(p, [0.95, -2.025, 0.6])


def test_momentum_follows_course_convention_over_three_steps():
    lr, beta = 0.1, 0.9
    opt = Momentum(lr, 2, np.float64, beta=beta)
    p = np.array([1.0, -1.0])
    gs = [np.array([1.0, 2.0]), np.array([-1.0, 0.5]), np.array([0.25, 0.0])]
    # hand-computed: v1 = 0.1·g1 = (0.1, 0.2); p = (0.99, -1.02)
    opt.step(p, gs[0])
    np.testing.assert_allclose(p, [0.99, -1.02])
    np.testing.assert_allclose(opt.velocity, [0.1, 0.2])
    # v2 = 0.9·(0.1, 0.2) + 0.1·(-1, 0.5) = (-0.01, 0.23); p = (0.991, -1.043)
    opt.step(p, gs[1])
    np.testing.assert_allclose(opt.velocity, [-0.01, 0.23])
    np.testing.assert_allclose(p, [0.991, -1.043])
    # v3 = 0.9·(-0.01, 0.23) + 0.1·(0.25, 0) = (0.016, 0.207); p = (0.9894, -1.0637)
    opt.step(p, gs[2])
    np.testing.assert_allclose(p, [0.9894, -1.0637])


def test_adam_first_step_is_lr_times_sign():
    lr = 0.01
    g = np.array([3.0, -0.2, 1e-3, -50.0])
    p = np.zeros(4)
    Adam(lr, 4, np.float64, epsilon=1e-8).step(p, g)
    # bias-corrected first step: -lr·g/(|g| + eps) ≈ -lr·sign(g)
    np.testing.assert_allclose(p, -lr * g / (np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(p, -lr * np.sign(g), rtol=1e-4)


def _textbook_adam(p, grads, lr, b1, b2, eps):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


@pytest.mark.parametrize("eps", [1e-8, 0.5])  # a large eps shows whether ε is applied to √v̂
def test_adam_matches_textbook_over_many_steps(eps):
    grads = [_grads(s) for s in range(25)]
    p0 = _grads(99)
    expected, m, v = _textbook_adam(p0.copy(), grads, 0.003, 0.8, 0.99, eps)
    p = p0.copy()
    opt = Adam(0.003, 6, np.float64, beta1=0.8, beta2=0.99, epsilon=eps)
    for g in grads:
        opt.step(p, g)
    np.testing.assert_allclose(p, expected, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(opt.first_moment, m, rtol=1e-10)
    np.testing.assert_allclose(opt.second_moment, v, rtol=1e-10)


def test_step_leaves_grads_alone_and_keeps_float32():
    g = _grads(1).astype(np.float32)
    g_copy = g.copy()
    for opt in (SGD(0.1, 6, np.float32), Momentum(0.1, 6, np.float32), Adam(0.1, 6, np.float32)):
        p = np.ones(6, dtype=np.float32)
        opt.step(p, g)
        assert p.dtype == np.float32
        np.testing.assert_array_equal(g, g_copy)


def test_make_optimizer_uses_config_values():
    adam = make_optimizer(OptimizerConfig(name="adam", lr=0.02, beta1=0.5, beta2=0.6, epsilon=1e-4), 3)
    assert isinstance(adam, Adam) and adam.lr == 0.02
    assert (adam.beta1, adam.beta2, adam.epsilon) == (0.5, 0.6, 1e-4)
    mom = make_optimizer(OptimizerConfig(name="momentum", lr=0.3, momentum=0.7), 3, np.float64)
    assert isinstance(mom, Momentum) and mom.beta == 0.7 and mom.lr == 0.3
    assert isinstance(make_optimizer(OptimizerConfig(name="sgd"), 3), SGD)


def test_lr_change_takes_effect_and_reset_clears_state():
    opt = Adam(0.1, 2, np.float64)
    p = np.zeros(2)
    opt.step(p, np.array([1.0, -1.0]))
    opt.reset()
    opt.lr = 0.5
    p[:] = 0
    opt.step(p, np.array([2.0, -2.0]))
    np.testing.assert_allclose(p, [-0.5, 0.5], rtol=1e-6)  # a first step again, with the new lr
