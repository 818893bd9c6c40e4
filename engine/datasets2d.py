"""Built-in 2-D toy datasets: moons, circles, spiral, blobs and xor.

Everything is generated with the ``numpy.random.Generator`` passed in (no scikit-learn),
so a seed reproduces the set exactly. Classes are balanced: with ``n`` samples and ``K``
classes every class gets ``n // K`` points and the first ``n % K`` classes one more.
The samples are shuffled, so any prefix of the set mixes all classes.

``noise`` is the standard deviation of Gaussian jitter:

- moons, circles, blobs, xor: jitter added to both coordinates (the usual units of the
  classic exercises: moons of radius 1, circles of radius 1 and ``factor`` = 0.8);
- spiral: jitter added to the angle in radians (the CS231n spiral), so arms stay arms.

Shapes: ``X`` float64 ``(n_samples, 2)``, ``y`` int64 ``(n_samples,)``.
"""

from __future__ import annotations

import numpy as np

from engine.config import BUILTIN_2D
from engine.dataset import SourceData
from engine.errors import DataError

CIRCLES_FACTOR = 0.8  # inner ring radius / outer ring radius, as in the classic initialization exercise


def class_sizes(n_samples: int, n_classes: int) -> np.ndarray:
    """Balanced class sizes ``(n_classes,)`` that add up to n_samples."""
    sizes = np.full(n_classes, n_samples // n_classes, dtype=np.int64)
    sizes[: n_samples % n_classes] += 1
    return sizes


def make_2d(
    name: str, n_samples: int, noise: float, rng: np.random.Generator, n_classes: int = 3
) -> SourceData:
    """Generate a built-in 2-D set; ``n_classes`` is used by spiral and blobs (the others have 2).

    Returns SourceData with X float64 ``(n_samples, 2)``, y int64 ``(n_samples,)`` and
    source ``"builtin:NAME"``. Raises DataError for an unknown name or impossible sizes.
    """
    if name not in _MAKERS:
        raise DataError(
            f"data.source: unknown built-in 2-D dataset {name!r} (known: {', '.join(BUILTIN_2D)})"
        )
    if noise < 0 or not np.isfinite(noise):
        raise DataError(f"data.noise must be a finite number ≥ 0, got {noise!r}")
    k = n_classes if name in ("spiral", "blobs") else 2
    if k < 2:
        raise DataError(f"data.n_classes must be at least 2, got {k}")
    if n_samples < k:
        raise DataError(f"data.n_samples must be at least {k} for builtin:{name}, got {n_samples}")
    X, y, classes = _MAKERS[name](class_sizes(n_samples, k), float(noise), rng)
    order = rng.permutation(n_samples)
    X = np.ascontiguousarray(X[order], dtype=np.float64)
    y = np.ascontiguousarray(y[order], dtype=np.int64)
    return SourceData(X=X, y=y, classes=classes, source=f"builtin:{name}")


def _labels(sizes: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)


def _jitter(X: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return X


def _moons(sizes, noise, rng):
    # Two interleaving half circles of radius 1: the upper one centred at (0, 0),
    # the lower one centred at (1, 0.5) and opened downwards.
    t0 = rng.uniform(0.0, np.pi, sizes[0])
    t1 = rng.uniform(0.0, np.pi, sizes[1])
    upper = np.column_stack([np.cos(t0), np.sin(t0)])
    lower = np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)])
    X = _jitter(np.vstack([upper, lower]), noise, rng)
    return X, _labels(sizes), ["upper moon", "lower moon"]


def _circles(sizes, noise, rng):
    # Outer ring radius 1 (class 0), inner ring radius CIRCLES_FACTOR (class 1).
    rings = []
    for radius, n in ((1.0, sizes[0]), (CIRCLES_FACTOR, sizes[1])):
        t = rng.uniform(0.0, 2.0 * np.pi, n)
        rings.append(radius * np.column_stack([np.cos(t), np.sin(t)]))
    X = _jitter(np.vstack(rings), noise, rng)
    return X, _labels(sizes), ["outer ring", "inner ring"]


def _spiral(sizes, noise, rng):
    # CS231n-style spiral: arm k sweeps 4 radians from angle 2πk/K while the radius grows to 1;
    # arms with different start angles never cross.
    k_arms = len(sizes)
    sweep = 4.0
    parts = []
    for k, n in enumerate(sizes):
        r = np.linspace(0.05, 1.0, n)
        t = np.linspace(k * 2.0 * np.pi / k_arms, k * 2.0 * np.pi / k_arms + sweep, n)
        if noise > 0:
            t = t + rng.normal(0.0, noise, n)
        parts.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
    return np.vstack(parts), _labels(sizes), [f"arm {k + 1}" for k in range(k_arms)]


def _blobs(sizes, noise, rng):
    # K Gaussian blobs with std `noise`, centres evenly spaced on the unit circle.
    k_blobs = len(sizes)
    angles = 2.0 * np.pi * np.arange(k_blobs) / k_blobs + np.pi / 2
    centres = np.column_stack([np.cos(angles), np.sin(angles)])
    X = np.repeat(centres, sizes, axis=0)
    X = _jitter(X, noise, rng)
    return X, _labels(sizes), [f"blob {k + 1}" for k in range(k_blobs)]


def _xor(sizes, noise, rng):
    # Points uniform in the four unit quadrants; class 0 where x·y > 0 (quadrants I and III),
    # class 1 where x·y < 0 (II and IV). Each class is split evenly between its two quadrants.
    parts = []
    for cls, n in enumerate(sizes):
        a = rng.uniform(0.0, 1.0, (n, 2))
        half = np.arange(n) % 2 == 0  # alternate the two quadrants of the class
        signs = np.where(half, 1.0, -1.0)
        a[:, 0] *= signs
        a[:, 1] *= signs if cls == 0 else -signs
        parts.append(a)
    X = _jitter(np.vstack(parts), noise, rng)
    return X, _labels(sizes), ["x·y > 0", "x·y < 0"]


_MAKERS = {"moons": _moons, "circles": _circles, "spiral": _spiral, "blobs": _blobs, "xor": _xor}
