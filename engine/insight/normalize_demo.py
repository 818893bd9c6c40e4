"""Why normalize inputs: cost contours over two weights, raw vs standardized, with gradient descent.

A fixed small problem: linear regression without bias on two centred features with
standard deviations 1 and ``scale`` (≈ 20), ``y = 2·x₁ + 3·x₂/scale + noise``, and the
cost ``J(w) = (1/2n)·‖X w − y‖²``. Its Hessian ``XᵀX/n`` has eigenvalues ≈ 1 and ≈ scale²,
so the raw cost's contours are long, thin ellipses (condition number ≈ scale²) while the
standardized problem (each feature divided by its std) has nearly round contours.

Gradient descent runs on both from the same relative starting point (the same offset
from each problem's minimum, as a fraction of the plotted window) at the same learning
rate: the largest stable one of the raw problem, ``lr_fraction · 2/λ_max(raw)`` (exactly
2/λ_max would oscillate forever). On the raw problem it zig-zags across the narrow
valley while crawling along it; on the standardized one it heads straight for the
minimum. The standardized problem's own best rate, ``2/(λ_min + λ_max)`` (the fastest
fixed rate for a quadratic), is given too, with its path, to show how many fewer steps
it needs. Everything is deterministic (seeded data,
closed-form minimum and eigenvalues).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

W_TRUE = (2.0, 3.0)  # true weights on (x₁, x₂/scale)
START = (-0.8, 0.6)  # start = minimum + START · window half-width


@dataclass(frozen=True)
class DescentPicture:
    """One problem: cost on a grid and a gradient-descent path.

    w1 ``(G,)``, w2 ``(G,)`` axes (columns, rows); cost ``(G, G)`` with cost[i, j] at
    (w1[j], w2[i]); path ``(steps + 1, 2)`` the weights after each step (row 0 the start);
    path_cost ``(steps + 1,)``; minimum ``(2,)``; eigenvalues of the Hessian (ascending);
    lr the learning rate of the path; lr_limit = 2/λ_max (larger diverges).
    """

    w1: np.ndarray
    w2: np.ndarray
    cost: np.ndarray
    path: np.ndarray
    path_cost: np.ndarray
    minimum: np.ndarray
    eigenvalues: np.ndarray
    lr: float
    lr_limit: float

    @property
    def condition_number(self) -> float:
        return float(self.eigenvalues[-1] / self.eigenvalues[0])

    def to_dict(self) -> dict:
        return {
            "w1": self.w1.tolist(),
            "w2": self.w2.tolist(),
            "cost": self.cost.tolist(),
            "path": self.path.tolist(),
            "path_cost": self.path_cost.tolist(),
            "minimum": self.minimum.tolist(),
            "eigenvalues": self.eigenvalues.tolist(),
            "condition_number": self.condition_number,
            "lr": self.lr,
            "lr_limit": self.lr_limit,
        }


@dataclass(frozen=True)
class NormalizationDemo:
    """raw and normalized at the same lr; normalized_own_lr at the standardized problem's best lr 2/(λ_min + λ_max)."""

    raw: DescentPicture
    normalized: DescentPicture
    normalized_own_lr: DescentPicture
    feature_std: tuple[float, float]

    def to_dict(self) -> dict:
        return {
            "raw": self.raw.to_dict(),
            "normalized": self.normalized.to_dict(),
            "normalized_own_lr": self.normalized_own_lr.to_dict(),
            "feature_std": list(self.feature_std),
        }


def demo_data(
    scale: float = 20.0, n: int = 200, noise: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed problem: centred X ``(n, 2)`` with feature stds ≈ (1, scale), and y ``(n,)``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2)) * np.array([1.0, scale])
    X -= X.mean(axis=0)
    y = W_TRUE[0] * X[:, 0] + W_TRUE[1] * X[:, 1] / scale + noise * rng.standard_normal(n)
    return X, y - y.mean()


def _picture(
    X: np.ndarray, y: np.ndarray, lr: float | str, lr_fraction: float, steps: int, grid: int, half: float
):
    """lr: a number, "stable" (lr_fraction · 2/λ_max) or "best" (2/(λ_min + λ_max))."""
    n = len(y)
    H = X.T @ X / n
    g0 = X.T @ y / n
    minimum = np.linalg.solve(H, g0)
    eig = np.linalg.eigvalsh(H)
    lr_limit = 2.0 / eig[-1]
    if lr == "stable":
        lr = lr_fraction * lr_limit
    elif lr == "best":
        lr = 2.0 / (eig[0] + eig[-1])
    c0 = float(y @ y) / (2 * n)

    def cost(w: np.ndarray) -> np.ndarray:  # w (..., 2): J = ½wᵀHw − g0ᵀw + c0
        return 0.5 * np.einsum("...i,ij,...j->...", w, H, w) - w @ g0 + c0

    w1 = np.linspace(minimum[0] - half, minimum[0] + half, grid)
    w2 = np.linspace(minimum[1] - half, minimum[1] + half, grid)
    W1, W2 = np.meshgrid(w1, w2)  # rows follow w2
    surface = cost(np.stack([W1, W2], axis=-1))
    path = np.empty((steps + 1, 2))
    path[0] = minimum + half * np.asarray(START)
    for k in range(steps):
        path[k + 1] = path[k] - lr * (H @ path[k] - g0)
    return DescentPicture(w1, w2, surface, path, cost(path), minimum, eig, float(lr), float(lr_limit))


def normalization_demo(
    scale: float = 20.0,
    n: int = 200,
    steps: int = 60,
    grid: int = 101,
    lr_fraction: float = 0.95,
    half_width: float = 4.0,
    seed: int = 0,
) -> NormalizationDemo:
    """Cost grids and descent paths for the raw and the standardized problem (see the module docstring).

    Each grid is a square window of ±half_width around its own minimum, with equal units on
    both axes, so the raw problem's ellipses show their true elongation.
    """
    if not scale > 0 or steps < 0 or grid < 2 or not 0 < lr_fraction < 1:
        raise ValueError("need scale > 0, steps ≥ 0, grid ≥ 2 and 0 < lr_fraction < 1")
    X, y = demo_data(scale, n, seed=seed)
    std = X.std(axis=0)
    Xn = X / std
    raw = _picture(X, y, "stable", lr_fraction, steps, grid, half_width)
    same = _picture(Xn, y, raw.lr, lr_fraction, steps, grid, half_width)
    own = _picture(Xn, y, "best", lr_fraction, steps, grid, half_width)
    return NormalizationDemo(raw, same, own, (float(std[0]), float(std[1])))


def steps_to_within(picture: DescentPicture, fraction: float = 0.01) -> int | None:
    """The first step k whose weights are within ``fraction`` of the starting distance from the
    minimum, ‖w_k − w*‖ ≤ fraction · ‖w_0 − w*‖; None when the path never gets there."""
    dist = np.linalg.norm(picture.path - picture.minimum, axis=1)
    hit = np.flatnonzero(dist <= fraction * dist[0])
    return int(hit[0]) if len(hit) else None
