"""Initializers: variances match their formulas, zeros are zeros, scale multiplies, biases zero."""

import numpy as np
import pytest

from engine.config import INITS
from engine.initializers import INIT_FORMULAS, init_weights
from engine.network import MLP

N_IN, N_OUT = 400, 300  # 120,000 draws: the sample variance is within ~1.3 % (3σ) of the truth

EXPECTED_VARIANCE = {
    "random": 1.0,
    "xavier": 1.0 / N_IN,
    "lecun": 1.0 / N_IN,
    "glorot": 2.0 / (N_IN + N_OUT),
    "he": 2.0 / N_IN,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_VARIANCE))
def test_variance_matches_formula(name):
    w = init_weights(name, N_IN, N_OUT, 1.0, np.random.default_rng(0), np.float64)
    assert w.shape == (N_IN, N_OUT)
    assert abs(w.mean()) < 4 * np.sqrt(EXPECTED_VARIANCE[name] / w.size)
    assert w.var() == pytest.approx(EXPECTED_VARIANCE[name], rel=0.03)


def test_he_and_glorot_differ_measurably():
    # guards against every initializer collapsing to one formula
    he = init_weights("he", N_IN, N_OUT, 1.0, np.random.default_rng(1), np.float64).var()
    glorot = init_weights("glorot", N_IN, N_OUT, 1.0, np.random.default_rng(1), np.float64).var()
    assert he / glorot == pytest.approx((2 / N_IN) / (2 / (N_IN + N_OUT)), rel=0.03)


def test_zeros_are_zeros():
    w = init_weights("zeros", 5, 7, 3.0, np.random.default_rng(0), np.float32)
    assert w.shape == (5, 7) and w.dtype == np.float32
    assert not w.any()


@pytest.mark.parametrize("name", ["random", "he", "glorot"])
def test_init_scale_multiplies(name):
    base = init_weights(name, 30, 20, 1.0, np.random.default_rng(5), np.float64)
    scaled = init_weights(name, 30, 20, 2.5, np.random.default_rng(5), np.float64)
    np.testing.assert_allclose(scaled, 2.5 * base, rtol=1e-12)


def test_dtype_is_respected_and_seed_is_dtype_independent():
    w32 = init_weights("he", 10, 4, 1.0, np.random.default_rng(3), np.float32)
    w64 = init_weights("he", 10, 4, 1.0, np.random.default_rng(3), np.float64)
    assert w32.dtype == np.float32 and w64.dtype == np.float64
    np.testing.assert_allclose(w32, w64, rtol=1e-6)


def test_network_biases_start_at_zero_and_weights_follow_init():
    net = MLP([50, 40, 3], "relu", dtype="float32")
    net.params.fill(7.0)  # stale values must be overwritten, biases included
    net.initialize("he", 1.0, np.random.default_rng(0))
    for b in net.b:
        assert not b.any()
    assert net.W[0].std() == pytest.approx(np.sqrt(2 / 50), rel=0.1)
    assert net.W[1].std() == pytest.approx(np.sqrt(2 / 40), rel=0.25)


def test_formulas_cover_every_config_initializer():
    assert set(INIT_FORMULAS) == set(INITS)
    assert "2/n_in" in INIT_FORMULAS["he"]
    assert "2/(n_in + n_out)" in INIT_FORMULAS["glorot"]
    assert "1/n_in" in INIT_FORMULAS["xavier"] and "1/n_in" in INIT_FORMULAS["lecun"]


def test_unknown_initializer_is_refused():
    with pytest.raises(ValueError, match="unknown initializer"):
        init_weights("orthogonal", 3, 3, 1.0, np.random.default_rng(0), np.float32)
