"""The Bayes error of generated sets, against closed forms and an independent quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.bayes import bayes_error
from engine.config import from_dict
from engine.diagnosis import resolve_human_error


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize("noise", [0.3, 0.5, 0.8])
def test_two_blobs_match_the_closed_form(noise):
    # centres (0, 1) and (0, -1): the optimal boundary is y = 0 and the error Φ(−1/σ)
    assert bayes_error("blobs", noise, 2) == pytest.approx(_phi(-1.0 / noise), abs=0.004)


def _quadrature_moons(noise: float, step: float = 0.02) -> float:
    """∫ min(p0, p1)/2 dx on a grid: an independent way to the same number."""
    g = np.arange(-1.0 - 5 * noise, 2.0 + 5 * noise, step)
    h = np.arange(-0.5 - 5 * noise, 1.0 + 5 * noise, step)
    gx, gy = np.meshgrid(g, h)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    t = (np.arange(400) + 0.5) * math.pi / 400

    def density(curve):
        out = np.zeros(len(pts))
        for i in range(0, len(pts), 4096):  # (4096, 400) distances at a time
            d = pts[i : i + 4096, None, :] - curve[None, :, :]
            out[i : i + 4096] = np.exp(-(d**2).sum(axis=2) / (2 * noise**2)).sum(axis=1)
        return out / len(curve) / (2 * math.pi * noise**2)

    p0 = density(np.column_stack([np.cos(t), np.sin(t)]))
    p1 = density(np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)]))
    return float(np.minimum(p0, p1).sum() * step * step / 2)


def test_moons_match_an_independent_quadrature():
    assert bayes_error("moons", 0.3) == pytest.approx(_quadrature_moons(0.3), abs=0.006)


def test_noiseless_and_separated_sets_have_no_bayes_error():
    assert bayes_error("moons", 0.0) == 0.0
    assert bayes_error("spiral", 0.1, 3) < 1e-4  # arms 2π/3 apart in angle, σ = 0.1 rad
    assert bayes_error("circles", 0.6) > 0.35  # heavy noise: rings nearly indistinguishable
    assert bayes_error("nope", 0.2) is None


def test_xor_matches_a_monte_carlo_of_the_sign_rule():
    # with noise the optimal rule stays sign(x·y); its error is P(a sign flips an odd number of times)
    noise = 0.25
    u = (np.arange(20000) + 0.5) / 20000
    flip = np.mean([_phi(-x / noise) for x in u])  # P(one coordinate crosses 0)
    expected = 2 * flip * (1 - flip)
    assert bayes_error("xor", noise) == pytest.approx(expected, abs=0.006)


def test_human_error_is_the_bayes_estimate_unless_the_user_set_one():
    cfg = from_dict({"data": {"source": "builtin:moons", "noise": 0.3}})
    value, source = resolve_human_error(cfg)
    assert source == "bayes_estimate" and value == pytest.approx(bayes_error("moons", 0.3), abs=1e-4)
    assert resolve_human_error(cfg.replace(**{"diagnosis.human_error": 0.05})) == (0.05, "config")
    assert resolve_human_error(from_dict({"data": {"source": "builtin:shapes"}})) == (0.0, "default")
