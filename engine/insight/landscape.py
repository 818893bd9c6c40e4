"""Loss landscape: the loss along random, filter-normalized directions around the trained weights.

Li et al., 2018 ("Visualizing the Loss Landscape of Neural Nets"): a random direction d
with the shape of the parameters is drawn from N(0, 1) and, for each *unit* (one output
neuron of a layer: column ``W[:, j]`` of ``W`` ``(n_in, n_out)``), rescaled to the norm of
that unit's weights, ``d[:, j] ← d[:, j] · ‖W[:, j]‖ / ‖d[:, j]‖``; bias directions are
zero. A step α along d then changes every unit by the same *relative* amount, so slices
of networks with different weight scales (say with and without L2) can be compared.

The 1-D slice is ``L(θ + α·d)`` for α in ``linspace(-span, span, points)`` (points odd, so
α = 0, the trained weights, is on it), averaged over a few directions; the 2-D slice is
``L(θ + α·d₁ + β·d₂)`` on a grid. Losses are measured as ``evaluate`` measures them
(:class:`engine.batches.EvalSet`: inference mode, the model's normalization, mean
cross-entropy without penalty), so the value at α = 0 *is* the evaluated loss. The
network itself is never changed: the shifted weights live in a clone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from engine.batches import EvalSet
from engine.dataset import ArraySet
from engine.errors import Cancelled
from engine.network import MLP

Progress = Callable[[int, int], None] | None
Cancel = Callable[[], bool] | None

POINTS_RANGE = (3, 401)
DIRECTIONS_RANGE = (1, 50)


def eval_sets(
    data,
    norm_mean: np.ndarray,
    norm_std: np.ndarray,
    dtype: str | np.dtype = "float32",
    names: tuple[str, ...] = ("train", "dev"),
    max_samples: int | None = None,
    seed: int = 0,
) -> dict[str, EvalSet]:
    """``{name: EvalSet}`` of a PreparedData's sets, normalized with the *model's* statistics.

    Pass each model's own ``norm_mean``/``norm_std`` (a compared run may have been trained
    with others). ``max_samples`` keeps a seeded subset of larger sets (the landscape
    evaluates every set ``points × directions`` times); empty sets are left out.
    """
    out = {}
    for name in names:
        s = getattr(data, name)
        if len(s) == 0:
            continue
        if max_samples is not None and len(s) > max_samples:
            idx = np.sort(np.random.default_rng(seed).choice(len(s), size=max_samples, replace=False))
            s = ArraySet(s.X[idx], s.y[idx])
        out[name] = EvalSet(s, norm_mean, norm_std, dtype)
    return out


def filter_normalized_direction(net: MLP, rng: np.random.Generator) -> np.ndarray:
    """A random direction ``(n_params,)`` in the layout of ``net.params`` (float64).

    Per layer i and unit j: ``d[:, j] = g[:, j] · ‖W_i[:, j]‖ / ‖g[:, j]‖`` with g ~ N(0, 1)
    of W_i's shape; biases 0. A unit whose weights are all zero gets a zero direction.
    Draws one ``(n_in, n_out)`` normal array per layer, in layer order, from ``rng``.
    """
    d = np.zeros(net.n_params, dtype=np.float64)
    at = 0
    for W in net.W:
        g = rng.standard_normal(W.shape)
        w_norm = np.sqrt(np.einsum("ij,ij->j", W.astype(np.float64), W.astype(np.float64)))
        g_norm = np.sqrt(np.einsum("ij,ij->j", g, g))
        g *= np.divide(w_norm, g_norm, out=np.zeros_like(w_norm), where=g_norm > 0)
        d[at : at + W.size] = g.ravel()
        at += W.size
    return d  # weights come first in the flat buffer, biases (zero here) after them


def alphas_for(points: int, span: float) -> np.ndarray:
    """``linspace(-span, span, points)`` with the middle value exactly 0 (points must be odd)."""
    if points % 2 == 0 or points < 3:
        raise ValueError(f"points must be odd and ≥ 3 (so α = 0 is on the slice), got {points}")
    if not span > 0:
        raise ValueError(f"span must be positive, got {span}")
    a = np.linspace(-span, span, points)
    a[points // 2] = 0.0
    return a


@dataclass(frozen=True)
class Slice1D:
    """alphas ``(P,)``; loss[name] ``(P,)`` the mean over directions; per_direction[name] ``(D, P)``."""

    alphas: np.ndarray
    loss: dict[str, np.ndarray]
    per_direction: dict[str, np.ndarray]
    seed: int

    def to_dict(self) -> dict:
        return {
            "alphas": self.alphas.tolist(),
            "loss": {k: v.tolist() for k, v in self.loss.items()},
            "loss_by_direction": {k: v.tolist() for k, v in self.per_direction.items()},
            "seed": self.seed,
        }


def _eval_loss(probe: MLP, theta: np.ndarray, direction_sum: np.ndarray, eval_set: EvalSet) -> float:
    np.add(theta, direction_sum, out=probe.params, casting="unsafe")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return float(eval_set.evaluate(probe)[0])


def loss_slice_1d(
    net: MLP,
    sets: Mapping[str, EvalSet],
    points: int = 21,
    span: float = 1.0,
    n_directions: int = 3,
    seed: int = 0,
    progress: Progress = None,
    cancel: Cancel = None,
) -> Slice1D:
    """The loss of each set (e.g. ``{"train": ..., "dev": ...}``) along ``n_directions`` directions.

    Directions are drawn one after another from ``default_rng(seed)`` with
    :func:`filter_normalized_direction`; the same seed on another run of the same
    architecture draws the same Gaussian numbers, each rescaled to that run's weights.
    progress(done, total) is called after each evaluation; cancel() True raises Cancelled.
    """
    alphas = alphas_for(points, span)
    if not DIRECTIONS_RANGE[0] <= n_directions <= DIRECTIONS_RANGE[1]:
        raise ValueError(f"n_directions must be in {list(DIRECTIONS_RANGE)}, got {n_directions}")
    rng = np.random.default_rng(seed)
    theta = net.params.astype(np.float64)
    probe = net.clone()
    per = {name: np.empty((n_directions, points)) for name in sets}
    total, done = n_directions * points * len(sets), 0
    for k in range(n_directions):
        d = filter_normalized_direction(net, rng)
        for p, a in enumerate(alphas):
            step = a * d
            for name, eval_set in sets.items():
                if cancel is not None and cancel():
                    raise Cancelled("loss landscape cancelled")
                per[name][k, p] = _eval_loss(probe, theta, step, eval_set)
                done += 1
                if progress is not None:
                    progress(done, total)
    mean = {name: v.mean(axis=0) for name, v in per.items()}
    return Slice1D(alphas, mean, per, int(seed))


@dataclass(frozen=True)
class Slice2D:
    """alphas ``(P,)`` along d₁ (columns), betas ``(P,)`` along d₂ (rows); loss ``(P, P)`` with loss[i, j] at (alphas[j], betas[i])."""

    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    seed: int

    def to_dict(self) -> dict:
        return {"alphas": self.alphas.tolist(), "betas": self.betas.tolist(), "loss": self.loss.tolist()}


def loss_slice_2d(
    net: MLP,
    eval_set: EvalSet,
    points: int = 21,
    span: float = 1.0,
    seed: int = 0,
    progress: Progress = None,
    cancel: Cancel = None,
) -> Slice2D:
    """``L(θ + α·d₁ + β·d₂)`` on a ``points × points`` grid; d₁, d₂ the first two directions of ``seed``.

    d₁ is the direction :func:`loss_slice_1d` draws first with the same seed, so the 2-D
    slice's middle row is that 1-D slice along d₁.
    """
    alphas = alphas_for(points, span)
    rng = np.random.default_rng(seed)
    d1 = filter_normalized_direction(net, rng)
    d2 = filter_normalized_direction(net, rng)
    theta = net.params.astype(np.float64)
    probe = net.clone()
    loss = np.empty((points, points))
    total = points * points
    for i, b in enumerate(alphas):
        row = b * d2
        for j, a in enumerate(alphas):
            if cancel is not None and cancel():
                raise Cancelled("loss landscape cancelled")
            loss[i, j] = _eval_loss(probe, theta, row + a * d1, eval_set)
            if progress is not None:
                progress(i * points + j + 1, total)
    return Slice2D(alphas, alphas.copy(), loss, int(seed))


def rise_width(alphas: np.ndarray, loss: np.ndarray, rise: float = 0.1) -> float | None:
    """Sharpness of a 1-D slice: the width in α of the region around α = 0 where the loss stays
    within ``rise`` of its value at α = 0.

    alphas ``(P,)`` increasing with 0 among them, loss ``(P,)``. On each side the first point
    where the loss reaches ``loss(0) + rise`` (NaN and ∞ count as reached) is found and the
    crossing is interpolated linearly between it and its neighbour towards the centre. None
    when the loss stays below that level on either side within the slice (wider than the
    slice). A wide, flat minimum has a large width, a sharp one a small width.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    zero = np.flatnonzero(alphas == 0.0)
    if len(zero) != 1 or len(alphas) != len(loss):
        raise ValueError("alphas must hold 0 exactly once and match loss in length")
    c = int(zero[0])
    level = loss[c] + rise
    if not np.isfinite(level):
        return None

    def crossing(step: int) -> float | None:
        prev = c
        for i in range(c + step, len(alphas) if step > 0 else -1, step):
            if not loss[i] < level:  # reached, or not a number
                if not np.isfinite(loss[i]):
                    return float(alphas[i])
                t = (level - loss[prev]) / (loss[i] - loss[prev])
                return float(alphas[prev] + t * (alphas[i] - alphas[prev]))
            prev = i
        return None

    right, left = crossing(1), crossing(-1)
    if right is None or left is None:
        return None
    return right - left
