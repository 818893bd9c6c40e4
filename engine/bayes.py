"""The Bayes error of the built-in 2-D sets, estimated from their generators.

The diagnosis needs a human-level error (a proxy for the Bayes error, the lowest error any
classifier can reach). For a generated set we know the generator, so we can do better than a
guess: every class density is a mixture over a latent position (the angle along a moon or
ring, the position along a spiral arm, a point in a square) jittered by Gaussian noise, so

    Bayes error = E_x[1 − max_c p(c | x)],   p(c | x) ∝ p(x | c)   (balanced classes)

estimated by Monte Carlo over ``N_SAMPLES`` points drawn from the generator's model, with each
class density integrated over a grid of ``N_LATENT`` latent positions (midpoint rule). The
standard error is about 0.2 percentage points. Spiral arms carry their noise on the angle
(see :mod:`engine.datasets2d`), so there the posterior depends on the angle at a given radius.
The estimate uses its own fixed seed: it describes the generator, not one drawn data set.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from engine.datasets2d import CIRCLES_FACTOR

N_SAMPLES = 20_000
N_LATENT = 256
SEED = 20_241_201
_SPIRAL_SWEEP = 4.0
_SPIRAL_R0 = 0.05


def bayes_error(name: str, noise: float, n_classes: int = 3, compute: bool = True) -> float | None:
    """Estimated Bayes error (a fraction) of ``builtin:name`` at this noise; None if unknown.

    The estimate takes ~0.1–0.3 s the first time and is remembered. compute=False returns
    only a remembered estimate (None otherwise): for a window that must not wait for it.
    """
    if name not in _ESTIMATORS:
        return None
    k = n_classes if name in ("spiral", "blobs") else 2
    key = (name, round(float(noise), 9), int(k))
    with _lock:
        if key in _memo:
            return _memo[key]
    if not compute:
        return None
    value = _estimate(*key)
    with _lock:
        _memo[key] = value
    return value


_memo: dict[tuple[str, float, int], float] = {}
_lock = threading.Lock()


def _estimate(name: str, noise: float, k: int) -> float:
    if noise <= 0:
        return 0.0  # noiseless classes do not overlap
    rng = np.random.default_rng(SEED)
    posterior = _ESTIMATORS[name](noise, k, rng)
    return float(np.mean(1.0 - posterior.max(axis=1)))


def _normalize(dens: np.ndarray) -> np.ndarray:
    total = dens.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        post = dens / total
    # far from every class all densities underflow to 0: such points are vanishingly rare
    post[~np.isfinite(post).all(axis=1)] = 1.0 / dens.shape[1]
    return post


def _curve_density(X: np.ndarray, curve: np.ndarray, noise: float) -> np.ndarray:
    """Mean over a curve's points ``(G, 2)`` of N(x; point, noise²·I), for X ``(n, 2)``; ``(n,)``."""
    # |x − c|² = |x|² + |c|² − 2·x·c: one matrix product instead of an (n, G, 2) difference
    # float32: the exponentials dominate and run twice as fast; the estimate's Monte Carlo
    # error (~0.002) dwarfs float32 rounding
    X32, c32 = X.astype(np.float32), curve.astype(np.float32)
    d2 = (X32 * X32).sum(axis=1)[:, None] + (c32 * c32).sum(axis=1)[None, :] - 2.0 * (X32 @ c32.T)
    np.maximum(d2, 0.0, out=d2)
    d2 *= np.float32(-1.0 / (2 * noise * noise))
    return np.exp(d2, out=d2).mean(axis=1, dtype=np.float64)


def _latent_grid(lo: float, hi: float) -> np.ndarray:
    return lo + (np.arange(N_LATENT) + 0.5) * (hi - lo) / N_LATENT


def _curves_posterior(curves: list[np.ndarray], draw, noise: float, rng) -> np.ndarray:
    n = N_SAMPLES // len(curves)
    X = np.vstack([draw(c, n, rng) + rng.normal(0.0, noise, (n, 2)) for c in range(len(curves))])
    dens = np.column_stack([_curve_density(X, curve, noise) for curve in curves])
    return _normalize(dens)


def _moons(noise: float, k: int, rng) -> np.ndarray:
    t = _latent_grid(0.0, math.pi)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])

    def draw(c, n, rng):
        s = rng.uniform(0.0, math.pi, n)
        if c == 0:
            return np.column_stack([np.cos(s), np.sin(s)])
        return np.column_stack([1.0 - np.cos(s), 0.5 - np.sin(s)])

    return _curves_posterior([upper, lower], draw, noise, rng)


def _circles(noise: float, k: int, rng) -> np.ndarray:
    t = _latent_grid(0.0, 2 * math.pi)
    radii = (1.0, CIRCLES_FACTOR)
    rings = [r * np.column_stack([np.cos(t), np.sin(t)]) for r in radii]

    def draw(c, n, rng):
        s = rng.uniform(0.0, 2 * math.pi, n)
        return radii[c] * np.column_stack([np.cos(s), np.sin(s)])

    return _curves_posterior(rings, draw, noise, rng)


def _blobs(noise: float, k: int, rng) -> np.ndarray:
    angles = 2.0 * np.pi * np.arange(k) / k + np.pi / 2
    centres = np.column_stack([np.cos(angles), np.sin(angles)])
    n = N_SAMPLES // k
    X = np.repeat(centres, n, axis=0) + rng.normal(0.0, noise, (n * k, 2))
    d2 = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    logd = -d2 / (2 * noise * noise)
    return _normalize(np.exp(logd - logd.max(axis=1, keepdims=True)))


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7): NumPy has no erf."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _unit_interval_density(x: np.ndarray, noise: float) -> np.ndarray:
    """Density of U(0, 1) + N(0, noise²) at x."""
    s = noise * math.sqrt(2.0)
    return 0.5 * (_erf(x / s) - _erf((x - 1.0) / s))


def _xor(noise: float, k: int, rng) -> np.ndarray:
    n = N_SAMPLES // 4
    parts = []
    for sx, sy in ((1, 1), (-1, -1), (-1, 1), (1, -1)):  # class 0: quadrants I, III; class 1: II, IV
        a = rng.uniform(0.0, 1.0, (n, 2)) * (sx, sy)
        parts.append(a + rng.normal(0.0, noise, (n, 2)))
    X = np.vstack(parts)

    def quadrant(sx, sy):
        return _unit_interval_density(sx * X[:, 0], noise) * _unit_interval_density(sy * X[:, 1], noise)

    d0 = quadrant(1, 1) + quadrant(-1, -1)
    d1 = quadrant(-1, 1) + quadrant(1, -1)
    return _normalize(np.column_stack([d0, d1]))


def _spiral(noise: float, k: int, rng) -> np.ndarray:
    # at radius r, arm j sits at angle start_j + sweep·(r − r0)/(1 − r0) plus N(0, noise²):
    # the posterior of a point is a comparison of wrapped normals of its angle
    n = N_SAMPLES // k
    starts = 2.0 * np.pi * np.arange(k) / k
    u = rng.uniform(0.0, 1.0, (k, n))
    centre = starts[:, None] + _SPIRAL_SWEEP * u
    theta = (centre + rng.normal(0.0, noise, (k, n))).reshape(-1)
    mu = starts[None, :] + _SPIRAL_SWEEP * u.reshape(-1)[:, None]
    diff = theta[:, None] - mu  # (k·n, k)
    wraps = 2.0 * np.pi * np.arange(-3, 4)
    dens = np.exp(-((diff[:, :, None] + wraps) ** 2) / (2 * noise * noise)).sum(axis=2)
    return _normalize(dens)


_ESTIMATORS = {"moons": _moons, "circles": _circles, "spiral": _spiral, "blobs": _blobs, "xor": _xor}
