"""Built-in 2-D datasets: shapes, balance, seeded determinism, geometry and the effect of noise."""

import numpy as np
import pytest

from engine.datasets2d import CIRCLES_FACTOR, class_sizes, make_2d
from engine.errors import DataError

NAMES = ["moons", "circles", "spiral", "blobs", "xor"]


def gen(name, n=300, noise=0.0, seed=0, k=3):
    return make_2d(name, n, noise, np.random.default_rng(seed), n_classes=k)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_source_and_balance(name):
    sd = gen(name, n=301, noise=0.1, k=4)
    k = 4 if name in ("spiral", "blobs") else 2
    assert sd.X.shape == (301, 2) and sd.X.dtype == np.float64
    assert sd.y.shape == (301,) and sd.y.dtype == np.int64
    assert sd.source == f"builtin:{name}"
    assert len(sd.classes) == k and len(set(sd.classes)) == k
    counts = np.bincount(sd.y, minlength=k)
    assert counts.sum() == 301 and counts.max() - counts.min() <= 1
    assert np.all(np.isfinite(sd.X))
    assert not sd.is_image and sd.presplit is None


@pytest.mark.parametrize("name", NAMES)
def test_seeded_determinism(name):
    a, b, c = gen(name, noise=0.2, seed=5), gen(name, noise=0.2, seed=5), gen(name, noise=0.2, seed=6)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_shuffled(name):
    # a prefix mixes classes (the generator does not emit class 0 first, then class 1 ...)
    sd = gen(name, n=400, noise=0.1)
    assert len(np.unique(sd.y[:40])) >= 2


def test_circles_radii_without_noise():
    sd = gen("circles", n=400)
    r = np.hypot(sd.X[:, 0], sd.X[:, 1])
    np.testing.assert_allclose(r[sd.y == 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(r[sd.y == 1], CIRCLES_FACTOR, atol=1e-12)
    assert CIRCLES_FACTOR == 0.8


def test_circles_noise_is_std_of_jitter():
    noise = 0.05
    sd = gen("circles", n=4000, noise=noise)
    r = np.hypot(sd.X[:, 0], sd.X[:, 1])
    # radial deviation of isotropic 2-D Gaussian jitter has std ≈ noise
    dev = r[sd.y == 0] - 1.0
    assert abs(dev.std() - noise) < 0.1 * noise
    assert abs(dev.mean()) < 0.01


def test_moons_geometry_without_noise():
    sd = gen("moons", n=400)
    up, low = sd.X[sd.y == 0], sd.X[sd.y == 1]
    np.testing.assert_allclose(np.hypot(up[:, 0], up[:, 1]), 1.0, atol=1e-12)
    assert np.all(up[:, 1] >= -1e-12)
    np.testing.assert_allclose(np.hypot(low[:, 0] - 1.0, low[:, 1] - 0.5), 1.0, atol=1e-12)
    assert np.all(low[:, 1] <= 0.5 + 1e-12)


def test_moons_noise_effect():
    clean, noisy = gen("moons", n=2000), gen("moons", n=2000, noise=0.3)
    r_clean = np.hypot(*clean.X[clean.y == 0].T)
    r_noisy = np.hypot(*noisy.X[noisy.y == 0].T)
    assert r_clean.std() < 1e-12
    assert 0.2 < r_noisy.std() < 0.4


def test_xor_quadrants_without_noise():
    sd = gen("xor", n=400)
    prod = sd.X[:, 0] * sd.X[:, 1]
    assert np.all(prod[sd.y == 0] > 0) and np.all(prod[sd.y == 1] < 0)
    assert np.all(np.abs(sd.X) <= 1.0)
    # all four quadrants are used, evenly
    quadrant = (sd.X[:, 0] > 0).astype(int) * 2 + (sd.X[:, 1] > 0)
    counts = np.bincount(quadrant, minlength=4)
    assert counts.min() >= 99


def test_blobs_centres_and_spread():
    k, noise = 5, 0.1
    sd = gen("blobs", n=5000, noise=noise, k=k)
    centres = np.array([sd.X[sd.y == c].mean(axis=0) for c in range(k)])
    np.testing.assert_allclose(np.hypot(*centres.T), 1.0, atol=0.02)
    for c in range(k):
        assert abs(sd.X[sd.y == c].std(axis=0).mean() - noise) < 0.01
    exact = gen("blobs", n=50, noise=0.0, k=k)
    assert len(np.unique(exact.X.round(12), axis=0)) == k


def test_spiral_arms_lie_on_their_curve_and_noise_jitters_the_angle():
    k = 3
    sd = gen("spiral", n=600, k=k)
    lines = []
    for c in range(k):
        pts = sd.X[sd.y == c]
        r = np.hypot(pts[:, 0], pts[:, 1])
        theta = np.arctan2(pts[:, 0], pts[:, 1])  # x = r sin t, y = r cos t
        order = np.argsort(r)
        # angle grows linearly with radius along an arm: unwrap and fit a line
        t = np.unwrap(theta[order])
        slope, intercept = np.polyfit(r[order], t, 1)
        resid = t - (slope * r[order] + intercept)
        assert np.abs(resid).max() < 1e-8
        lines.append((slope, intercept))
    # with noise, the angle of each point jitters around its arm's line with std ≈ noise
    noisy = gen("spiral", n=3000, noise=0.2, k=k)
    for c in range(k):
        pts = noisy.X[noisy.y == c]
        r = np.hypot(pts[:, 0], pts[:, 1])
        theta = np.arctan2(pts[:, 0], pts[:, 1])
        slope, intercept = lines[c]
        resid = np.angle(np.exp(1j * (theta - (slope * r + intercept))))  # wrapped to (-π, π]
        assert abs(resid.std() - 0.2) < 0.02


def test_class_sizes():
    np.testing.assert_array_equal(class_sizes(10, 3), [4, 3, 3])
    np.testing.assert_array_equal(class_sizes(9, 3), [3, 3, 3])


def test_refusals():
    with pytest.raises(DataError, match="data.source"):
        gen("nope")
    with pytest.raises(DataError, match="data.n_samples"):
        gen("spiral", n=3, k=5)
    with pytest.raises(DataError, match="data.noise"):
        gen("moons", noise=-1.0)
